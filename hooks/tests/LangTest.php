<?php

/**
 * lang/*.json, read by both PHP and Go: every English string is translated
 * in every other language, with the same {placeholders}, so no client ever
 * reads a fallback in another language or a raw {name}.
 */

use PHPUnit\Framework\TestCase;

final class LangTest extends TestCase
{
    private static function strings(string $code): array
    {
        $file = dirname(__DIR__, 2) . '/lang/' . $code . '.json';
        $data = json_decode((string) file_get_contents($file), true);
        self::assertIsArray($data, "$code.json is not a JSON object");
        foreach ($data as $key => $value) {
            self::assertIsString($value, "$code.json: $key is not a string");
        }
        return $data;
    }

    public static function languages(): array
    {
        $out = [];
        foreach (glob(dirname(__DIR__, 2) . '/lang/*.json') as $file) {
            $code = basename($file, '.json');
            if ($code !== 'en') {
                $out[$code] = [$code];
            }
        }
        return $out;
    }

    public function testGermanAndRussianAreShipped(): void
    {
        $this->assertArrayHasKey('de', self::languages());
        $this->assertArrayHasKey('ru', self::languages());
    }

    /**
     * @dataProvider languages
     */
    public function testEveryEnglishKeyIsTranslated(string $code): void
    {
        $missing = array_diff(array_keys(self::strings('en')), array_keys(self::strings($code)));
        $this->assertSame([], array_values($missing), "$code.json lacks these keys (English would be shown)");
    }

    /**
     * @dataProvider languages
     */
    public function testNoKeyWithoutAnEnglishOriginal(string $code): void
    {
        $extra = array_diff(array_keys(self::strings($code)), array_keys(self::strings('en')));
        $this->assertSame([], array_values($extra), "$code.json has keys en.json lacks (a typo, or a string English lost)");
    }

    /**
     * @dataProvider languages
     */
    public function testPlaceholdersMatchEnglish(string $code): void
    {
        $en = self::strings('en');
        foreach (self::strings($code) as $key => $text) {
            if (!isset($en[$key])) {
                continue;
            }
            preg_match_all('/\{[a-z_]+\}/', $en[$key], $want);
            preg_match_all('/\{[a-z_]+\}/', $text, $got);
            sort($want[0]);
            sort($got[0]);
            $this->assertSame($want[0], $got[0], "$code.json $key: placeholders differ from English");
        }
    }
}
