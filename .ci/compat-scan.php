<?php

/**
 * compat-scan.php: a fast first line against PHP >= 8.0 in code that must
 * run on PHP 7.4 (WHMCS 8, DESIGN §9). It reads the tokens of each file and
 * reports syntax and functions/classes newer than 7.4. Run it on any PHP
 * >= 7.4; it needs no extension but tokenizer. `php7.4 -l` and PHPUnit on
 * 7.4 (.ci/compat.sh) are the real check: this only fails sooner.
 *
 *   php .ci/compat-scan.php FILE...     # one line per finding; exit 1 if any
 *   php .ci/compat-scan.php --self-test # every sample below is caught (or not)
 *
 * A function the file itself defines (a polyfill behind function_exists) is
 * not reported.
 */

const NEWER_FUNCTIONS = [
    'str_contains' => '8.0', 'str_starts_with' => '8.0', 'str_ends_with' => '8.0', 'fdiv' => '8.0',
    'get_debug_type' => '8.0', 'get_resource_id' => '8.0', 'preg_last_error_msg' => '8.0',
    'array_is_list' => '8.1', 'enum_exists' => '8.1', 'fsync' => '8.1', 'fdatasync' => '8.1',
    'mysqli_fetch_column' => '8.1',
    'ini_parse_quantity' => '8.2', 'memory_reset_peak_usage' => '8.2', 'mysqli_execute_query' => '8.2',
    'openssl_cipher_key_length' => '8.2', 'curl_upkeep' => '8.2', 'libxml_get_external_entity_loader' => '8.2',
    'json_validate' => '8.3', 'mb_str_pad' => '8.3', 'str_increment' => '8.3', 'str_decrement' => '8.3',
    'stream_context_set_options' => '8.3',
    'array_find' => '8.4', 'array_find_key' => '8.4', 'array_any' => '8.4', 'array_all' => '8.4',
    'mb_trim' => '8.4', 'mb_ltrim' => '8.4', 'mb_rtrim' => '8.4', 'mb_ucfirst' => '8.4', 'mb_lcfirst' => '8.4',
];

const NEWER_CLASSES = [
    'weakmap' => '8.0', 'stringable' => '8.0', 'valueerror' => '8.0', 'unhandledmatcherror' => '8.0',
    'phptoken' => '8.0', 'fiber' => '8.1', 'fibererror' => '8.1', 'unitenum' => '8.1', 'backedenum' => '8.1',
    'sensitiveparameter' => '8.2', 'random\\randomizer' => '8.2', 'override' => '8.3',
];

// Token ids that PHP < 8 does not have: -1 never matches a real token.
function tok(string $name): int
{
    return defined($name) ? constant($name) : -1;
}

/**
 * scan returns the findings for one file's source: [line, message].
 */
function scan(string $src): array
{
    $tokens = [];
    foreach (token_get_all($src) as $t) {
        if (is_array($t)) {
            if (in_array($t[0], [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT], true)) {
                continue;
            }
            $tokens[] = ['id' => $t[0], 'text' => $t[1], 'line' => $t[2]];
        } else {
            $line = $tokens ? end($tokens)['line'] : 1;
            $tokens[] = ['id' => $t, 'text' => $t, 'line' => $line];
        }
    }
    // Lines of whole-line attributes: on 7.4 `#[...]` alone on its line is a
    // comment (the usual #[\ReturnTypeWillChange]), so it is harmless there.
    $lines = explode("\n", $src);

    $defined = [];
    foreach ($tokens as $i => $t) {
        if ($t['id'] === T_FUNCTION && isset($tokens[$i + 1]) && $tokens[$i + 1]['id'] === T_STRING) {
            $defined[strtolower($tokens[$i + 1]['text'])] = true;
        }
    }

    $out = [];
    $add = function (int $line, string $what, string $ver) use (&$out) {
        $out[] = [$line, "$what (PHP $ver)"];
    };
    $id = function (int $i) use ($tokens) {
        return $tokens[$i]['id'] ?? null;
    };
    $simple = [
        tok('T_MATCH') => ['match expression', '8.0'],
        tok('T_NULLSAFE_OBJECT_OPERATOR') => ['nullsafe operator ?->', '8.0'],
        tok('T_ENUM') => ['enum', '8.1'],
        tok('T_READONLY') => ['readonly', '8.1'],
    ];
    $n = count($tokens);
    for ($i = 0; $i < $n; $i++) {
        $t = $tokens[$i];
        $prev = $i > 0 ? $tokens[$i - 1] : null;
        if (isset($simple[$t['id']])) {
            $add($t['line'], $simple[$t['id']][0], $simple[$t['id']][1]);
            continue;
        }
        if ($t['id'] === tok('T_ATTRIBUTE')) {
            $rest = trim(substr($lines[$t['line'] - 1], strpos($lines[$t['line'] - 1], '#[')));
            if (!preg_match('/^#\[[^\]]*\]$/', $rest)) {
                $add($t['line'], 'attribute not alone on its line (7.4 reads #[ as a comment)', '8.0');
            }
            continue;
        }
        if ($t['id'] === T_LNUMBER && preg_match('/^0[oO]/', $t['text'])) {
            $add($t['line'], 'octal literal 0o', '8.1');
        }
        // A call of a newer function: name(, not ->name( or ::name( or function name(.
        if (in_array($t['id'], [T_STRING, tok('T_NAME_FULLY_QUALIFIED')], true) && $id($i + 1) === '(') {
            $name = strtolower(ltrim($t['text'], '\\'));
            $before = $prev['id'] ?? null;
            if (isset(NEWER_FUNCTIONS[$name]) && !isset($defined[$name])
                && !in_array($before, [T_OBJECT_OPERATOR, T_DOUBLE_COLON, T_FUNCTION, T_NEW, T_CONST, tok('T_NULLSAFE_OBJECT_OPERATOR')], true)) {
                $add($t['line'], "$name()", NEWER_FUNCTIONS[$name]);
            }
        }
        // A newer class: new X, X::, catch (X, instanceof X, extends/implements X.
        if (in_array($t['id'], [T_STRING, tok('T_NAME_FULLY_QUALIFIED'), tok('T_NAME_QUALIFIED')], true)) {
            $name = strtolower(ltrim($t['text'], '\\'));
            $before = $prev['id'] ?? null;
            if (isset(NEWER_CLASSES[$name]) && ($id($i + 1) === T_DOUBLE_COLON
                || in_array($before, [T_NEW, T_INSTANCEOF, T_EXTENDS, T_IMPLEMENTS], true)
                || ($before === '(' && $id($i - 2) === T_CATCH) || $before === '|')) {
                $add($t['line'], "class $t[text]", NEWER_CLASSES[$name]);
            }
        }
        // Named argument: ( or , then identifier then : (not ::, not ?:).
        if (($t['id'] === '(' || $t['id'] === ',') && isset($tokens[$i + 2])
            && $tokens[$i + 2]['id'] === ':' && preg_match('/^[A-Za-z_]\w*$/', $tokens[$i + 1]['text'])
            && !in_array($tokens[$i + 1]['id'], [T_DEFAULT, T_CASE], true)) {
            $add($tokens[$i + 1]['line'], 'named argument ' . $tokens[$i + 1]['text'] . ':', '8.0');
        }
        // first-class callable syntax f(...)
        if ($t['id'] === '(' && $id($i + 1) === T_ELLIPSIS && $id($i + 2) === ')') {
            $add($t['line'], 'first-class callable (...)', '8.1');
        }
        // $object::class
        if ($t['id'] === T_VARIABLE && $id($i + 1) === T_DOUBLE_COLON && $id($i + 2) === T_CLASS) {
            $add($t['line'], '$object::class', '8.0');
        }
        // throw as an expression
        if ($t['id'] === T_THROW && in_array($prev['id'] ?? null, [T_COALESCE, T_DOUBLE_ARROW, '?', '=', ',', T_BOOLEAN_AND, T_BOOLEAN_OR, T_LOGICAL_AND, T_LOGICAL_OR, '('], true)) {
            $add($t['line'], 'throw as an expression', '8.0');
        }
        // catch (E) without a variable
        if ($t['id'] === T_CATCH && $id($i + 1) === '(') {
            for ($j = $i + 2; $j < $n && $tokens[$j]['id'] !== ')'; $j++) {
                if ($tokens[$j]['id'] === T_VARIABLE) {
                    continue 2;
                }
            }
            $add($t['line'], 'catch without a variable', '8.0');
        }
        // Declarations: parameter lists and return types.
        if (($t['id'] === T_FUNCTION || $t['id'] === T_FN) && $i + 1 < $n) {
            $j = $i + 1;
            $ctor = false;
            if ($id($j) === '&') {
                $j++;
            }
            if ($id($j) === T_STRING) {
                $ctor = strtolower($tokens[$j]['text']) === '__construct';
                $j++;
            }
            if ($id($j) !== '(') {
                continue;
            }
            $j = checkParams($tokens, $j, $ctor, $add, $t['line']);
            if ($id($j + 1) === T_USE && $id($j + 2) === '(') {
                $j = checkParams($tokens, $j + 2, false, $add, $t['line']);
            }
            if ($id($j + 1) === ':') {
                checkType($tokens, $j + 2, true, $add);
            }
        }
    }
    usort($out, function ($a, $b) {
        return $a[0] <=> $b[0];
    });
    return $out;
}

/**
 * checkParams checks the parameter list opening at $open and returns the
 * index of its closing parenthesis.
 */
function checkParams(array $tokens, int $open, bool $ctor, callable $add, int $line): int
{
    $depth = 0;
    $inDefault = false;
    $typeStart = $open + 1;
    $lastSignificant = null;
    for ($j = $open; $j < count($tokens); $j++) {
        $t = $tokens[$j];
        if (in_array($t['id'], ['(', '[', '{'], true)) {
            $depth++;
        } elseif (in_array($t['id'], [')', ']', '}'], true)) {
            $depth--;
            if ($depth === 0) {
                if ($lastSignificant === ',') {
                    $add($t['line'], 'trailing comma in a parameter list', '8.0');
                }
                return $j;
            }
        }
        if ($depth === 1) {
            if ($t['id'] === ',') {
                $inDefault = false;
                $typeStart = $j + 1;
            } elseif ($t['id'] === '=') {
                $inDefault = true;
            } elseif (!$inDefault && in_array($t['id'], [T_PUBLIC, T_PROTECTED, T_PRIVATE], true) && $ctor) {
                $add($t['line'], 'constructor property promotion', '8.0');
            } elseif (!$inDefault && $t['id'] === T_VARIABLE && $j > $typeStart) {
                checkType($tokens, $typeStart, false, $add);
            } elseif ($inDefault && $t['id'] === T_NEW) {
                $add($t['line'], 'new in a parameter default', '8.1');
            }
        }
        if ($j > $open) {
            $lastSignificant = $t['id'];
        }
    }
    return count($tokens) - 1;
}

/**
 * checkType checks a type starting at $k (a parameter's, or a return type).
 */
function checkType(array $tokens, int $k, bool $return, callable $add): void
{
    $parts = [];
    $amp = tok('T_AMPERSAND_NOT_FOLLOWED_BY_VAR_OR_VARARG');
    for (; $k < count($tokens); $k++) {
        $t = $tokens[$k];
        if (in_array($t['id'], [T_VARIABLE, T_ELLIPSIS, '{', ';', T_DOUBLE_ARROW, tok('T_AMPERSAND_FOLLOWED_BY_VAR_OR_VARARG')], true)) {
            break;
        }
        if ($t['id'] === '&' && isset($tokens[$k + 1]) && in_array($tokens[$k + 1]['id'], [T_VARIABLE, T_ELLIPSIS], true)) {
            break;
        }
        if ($t['id'] === '|') {
            $add($t['line'], 'union type', '8.0');
        } elseif ($t['id'] === $amp || $t['id'] === '&') {
            $add($t['line'], 'intersection type', '8.1');
        } elseif ($t['id'] === '(') {
            $add($t['line'], 'DNF type', '8.2');
        } elseif ($t['id'] !== '?') {
            $parts[] = strtolower($t['text']);
        }
        $line = $t['line'];
    }
    foreach ($parts as $p) {
        $newer = ['mixed' => '8.0', 'never' => '8.1', 'null' => '8.2', 'false' => '8.2', 'true' => '8.2'];
        if ($return) {
            $newer['static'] = '8.0';
        }
        if (isset($newer[$p])) {
            $add($line, "type $p", $newer[$p]);
        }
    }
}

function selfTest(): int
{
    $caught = [
        'array_is_list($a);', '\str_contains($a, "b");', 'echo match ($a) { 1 => 2, default => 3 };',
        '$a?->b;', 'enum Suit { case Hearts; }', 'class A { public readonly int $x; }',
        'f(name: 1);', 'f($a, flags: 1);', '$f = strlen(...);', 'echo $o::class;',
        '$a = $b ?? throw new Exception();', 'try {} catch (Exception) {}',
        'function f(int|string $a) {}', 'function f(): mixed {}', 'class A { function f(): static {} }',
        'function f(): never {}', 'function f(A&B $x) {}', 'class A { function __construct(private $a) {} }',
        'function f($a, $b,) {}', 'function f($a = new A()) {}', '$x = 0o17;', '$m = new WeakMap();',
        'try {} catch (ValueError $e) {}', '#[Attr] function f() {}', 'function f(): false {}',
        'function f(?mixed $a) {}', 'fn($a): int|string => $a;', '$g = function ($a) use ($b,) {};',
    ];
    $clean = [
        'function str_contains($h, $n) { return strpos($h, $n) !== false; } str_contains("a", "b");',
        '$o->str_contains($a);', 'A::array_is_list($a);', 'f($a ? B : C);', 'switch ($a) { case B: break; default: }',
        'f($a, ...$rest);', 'function f(&$a, ...$b) {}', 'function f(?int $a = null, $b = A | B): ?array {}',
        'function f(): self {}', 'class A { private string $s; public function __construct(string $s) { $this->s = $s; } }',
        'if ($a) throw new Exception();', "#[\\ReturnTypeWillChange]\nfunction f() {}", '$a ??= 1; $f = fn($x) => $x * 2;',
        'f(...$args);', 'echo A::class;', 'function f(array $a = []): void {}', '$x = $y & $z;', '$x = $a ?: $b;',
        'label: goto label;', 'f(E_ALL | E_STRICT);', 'function f(callable $c = null) {}',
    ];
    $bad = 0;
    foreach ($caught as $s) {
        if (!scan("<?php\n$s\n")) {
            fwrite(STDERR, "self-test: not caught: $s\n");
            $bad++;
        }
    }
    foreach ($clean as $s) {
        foreach (scan("<?php\n$s\n") as $f) {
            fwrite(STDERR, "self-test: false finding in $s: $f[1]\n");
            $bad++;
        }
    }
    return $bad === 0 ? 0 : 1;
}

if (($argv[1] ?? '') === '--self-test') {
    exit(selfTest());
}
$found = 0;
foreach (array_slice($argv, 1) as $file) {
    $src = @file_get_contents($file);
    if ($src === false) {
        fwrite(STDERR, "$file: cannot read\n");
        $found++;
        continue;
    }
    foreach (scan($src) as $f) {
        fwrite(STDERR, "$file:$f[0]: $f[1], newer than 7.4\n");
        $found++;
    }
}
exit($found === 0 ? 0 : 1);
