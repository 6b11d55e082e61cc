<?php

/**
 * Sizes, dates (WHMCS's DateFormat, the system time zone) and the age of
 * the plugin's facts, as the client reads them.
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\Format;
use WHMCS\Module\Server\Pvekeep\Lang;

require_once __DIR__ . '/bootstrap.php';

final class FormatTest extends TestCase
{
    private static function format(string $language = 'english', string $dateFormat = 'DD/MM/YYYY', string $zone = 'Europe/Berlin'): Format
    {
        return new Format(new Lang($language), $dateFormat, new DateTimeZone($zone), strtotime('2026-11-22T10:30:00Z'));
    }

    public static function sizes(): array
    {
        return [
            'nothing' => [0, 'english', '0 B'],
            'bytes' => [1023, 'english', '1023 B'],
            'one KiB' => [1024, 'english', '1.0 KiB'],
            'one and a half GiB' => [1610612736, 'english', '1.5 GiB'],
            'rounds up into the next unit' => [1073700000, 'english', '1.0 GiB'],
            'just below the rounding' => [1073636966, 'english', '1023.9 MiB'],
            'German decimal comma' => [1610612736, 'german', '1,5 GiB'],
            'large' => [5 * 1024 ** 4 + 512 * 1024 ** 3, 'english', '5.5 TiB'],
            'numeric string' => ['2048', 'english', '2.0 KiB'],
            'negative' => [-5, 'english', '0 B'],
            'not a number' => ['lots', 'english', '0 B'],
        ];
    }

    /**
     * @dataProvider sizes
     */
    public function testSize($bytes, string $language, string $want): void
    {
        $this->assertSame($want, self::format($language)->size($bytes));
    }

    public static function dateFormats(): array
    {
        return [
            'DD/MM/YYYY' => ['DD/MM/YYYY', 'd/m/Y'],
            'MM/DD/YYYY' => ['MM/DD/YYYY', 'm/d/Y'],
            'YYYY-MM-DD' => ['YYYY-MM-DD', 'Y-m-d'],
            'DD.MM.YYYY' => ['DD.MM.YYYY', 'd.m.Y'],
            'YYYY/MM/DD' => ['YYYY/MM/DD', 'Y/m/d'],
            'lower case' => ['dd-mm-yyyy', 'd-m-Y'],
            'unset' => ['', 'Y-m-d'],
            'nonsense' => ['DD/DD/YYYY', 'Y-m-d'],
            'PHP format is not taken as is' => ['d/m/Y', 'Y-m-d'],
        ];
    }

    /**
     * @dataProvider dateFormats
     */
    public function testWhmcsDateFormat(string $whmcs, string $php): void
    {
        $this->assertSame($php, Format::phpDateFormat($whmcs));
    }

    public static function times(): array
    {
        return [
            'UTC into the system zone' => ['2026-11-22T10:15:42Z', '22/11/2026 11:15'],
            'an offset too' => ['2026-11-22T12:15:42+02:00', '22/11/2026 11:15'],
            'across midnight' => ['2026-11-22T23:30:00Z', '23/11/2026 00:30'],
            'fractional seconds' => ['2026-11-22T10:15:42.123456Z', '22/11/2026 11:15'],
            'empty' => ['', ''],
            'null' => [null, ''],
            'words PHP would parse' => ['tomorrow', ''],
            'date only' => ['2026-11-22', ''],
            'no such month' => ['2026-13-05T10:15:42Z', ''],
            'no such day (PHP would roll over)' => ['2026-02-30T10:15:42Z', ''],
        ];
    }

    /**
     * @dataProvider times
     */
    public function testDateTimeInPanelFormatAndZone($in, string $want): void
    {
        $this->assertSame($want, self::format()->dateTime($in));
    }

    public function testUsFormatAndAnotherZone(): void
    {
        $this->assertSame('11/22/2026 05:15', self::format('english', 'MM/DD/YYYY', 'America/New_York')->dateTime('2026-11-22T10:15:00Z'));
    }

    public static function ages(): array
    {
        return [
            'never' => [null, 'english', 'Server status not checked yet'],
            'seconds' => ['2026-11-22T10:29:30Z', 'english', 'checked just now'],
            'minutes' => ['2026-11-22T10:27:00Z', 'english', 'checked 3 min ago'],
            'hours' => ['2026-11-22T07:30:00Z', 'english', 'checked 3 h ago'],
            'days' => ['2026-11-20T10:30:00Z', 'english', 'checked 2 d ago'],
            'German' => ['2026-11-22T10:27:00Z', 'german', 'vor 3 Min. abgefragt'],
            'Russian' => ['2026-11-22T10:27:00Z', 'russian', 'проверено 3 мин. назад'],
            'a clock ahead of ours' => ['2026-11-22T10:31:00Z', 'english', 'checked just now'],
        ];
    }

    /**
     * @dataProvider ages
     */
    public function testAge($checkedAt, string $language, string $want): void
    {
        $this->assertSame($want, self::format($language)->age($checkedAt));
    }
}
