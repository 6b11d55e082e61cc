<?php

/**
 * The WHMCS classes the module may use (contract-7 "The WHMCS surface"), and
 * nothing more: a call outside this subset fails (Error: undefined method),
 * so the module cannot come to rely on something the stand-in never checked.
 */

namespace WHMCS\Database {

    /**
     * WHMCS's Capsule is Laravel's query builder on WHMCS's PDO connection.
     * Here: table()->where()/whereIn()->get()/first()/value(), on PDO.
     */
    class Capsule
    {
        public static function table($table)
        {
            return new StandinBuilder((string) $table);
        }
    }

    class StandinBuilder
    {
        private $table;
        private $wheres = [];
        private $args = [];

        public function __construct($table)
        {
            if (!preg_match('/^[A-Za-z0-9_]+$/', $table)) {
                throw new \InvalidArgumentException("Capsule::table: bad table name $table");
            }
            $this->table = $table;
        }

        private static function column($col)
        {
            if (!is_string($col) || !preg_match('/^[A-Za-z0-9_]+$/', $col)) {
                throw new \InvalidArgumentException('Capsule: bad column ' . var_export($col, true));
            }
            return '`' . $col . '`';
        }

        /** where($col, $value) or where($col, $operator, $value), as Laravel. */
        public function where($col, $opOrValue, ...$rest)
        {
            if (count($rest) > 1) {
                throw new \BadMethodCallException('Capsule stand-in: where() takes 2 or 3 arguments');
            }
            $op = '=';
            $value = $opOrValue;
            if (count($rest) === 1) {
                $op = (string) $opOrValue;
                $value = $rest[0];
                if (!in_array($op, ['=', '!=', '<>', '<', '>', '<=', '>='], true)) {
                    throw new \BadMethodCallException("Capsule stand-in: operator $op is not supported");
                }
            }
            if (!is_scalar($value) && $value !== null) {
                throw new \InvalidArgumentException('Capsule stand-in: where() value must be scalar');
            }
            if ($value === null) {
                $this->wheres[] = self::column($col) . ($op === '=' ? ' IS NULL' : ' IS NOT NULL');
            } else {
                $this->wheres[] = self::column($col) . " $op ?";
                $this->args[] = is_bool($value) ? (int) $value : $value;
            }
            return $this;
        }

        public function whereIn($col, $values)
        {
            if (!is_array($values)) {
                throw new \InvalidArgumentException('Capsule stand-in: whereIn() takes an array');
            }
            if (!$values) {
                $this->wheres[] = '0 = 1'; // Laravel's answer to an empty IN list
                return $this;
            }
            $this->wheres[] = self::column($col) . ' IN (' . implode(',', array_fill(0, count($values), '?')) . ')';
            foreach ($values as $v) {
                $this->args[] = $v;
            }
            return $this;
        }

        private function select($limit = null)
        {
            $sql = 'SELECT * FROM `' . $this->table . '`';
            if ($this->wheres) {
                $sql .= ' WHERE ' . implode(' AND ', $this->wheres);
            }
            if ($limit !== null) {
                $sql .= ' LIMIT ' . (int) $limit;
            }
            $st = \standin_pdo()->prepare($sql);
            $st->execute($this->args);
            return $st->fetchAll(\PDO::FETCH_OBJ);
        }

        public function get()
        {
            return new StandinCollection($this->select());
        }

        public function first()
        {
            $rows = $this->select(1);
            return $rows ? $rows[0] : null;
        }

        public function value($col)
        {
            self::column($col);
            $row = $this->first();
            if ($row === null) {
                return null;
            }
            if (!property_exists($row, $col)) {
                throw new \InvalidArgumentException("Capsule: {$this->table} has no column $col");
            }
            return $row->$col;
        }
    }

    /** The few Illuminate\Support\Collection methods a module commonly leans on. */
    class StandinCollection implements \IteratorAggregate, \Countable
    {
        private $items;

        public function __construct(array $items)
        {
            $this->items = $items;
        }

        public function getIterator(): \ArrayIterator
        {
            return new \ArrayIterator($this->items);
        }

        public function count(): int
        {
            return count($this->items);
        }

        public function all()
        {
            return $this->items;
        }

        public function toArray()
        {
            return array_map(function ($o) {
                return (array) $o;
            }, $this->items);
        }

        public function isEmpty()
        {
            return !$this->items;
        }

        public function first()
        {
            return $this->items ? $this->items[0] : null;
        }
    }
}

namespace WHMCS\Config {

    /** \WHMCS\Config\Setting::getValue($name): tblconfiguration, as WHMCS. */
    class Setting
    {
        public static function getValue($name)
        {
            $all = \standin_settings();
            return $all[$name] ?? null;
        }
    }
}

namespace WHMCS\Service {

    /**
     * $params['model']: WHMCS hands an Eloquent model of the service. Here a
     * read-only object with tblhosting's columns as properties (an unknown
     * attribute is null, as Eloquent's).
     */
    class Service
    {
        private $attributes;

        public function __construct(array $row)
        {
            $this->attributes = $row;
        }

        public function __get($name)
        {
            return $this->attributes[$name] ?? null;
        }

        public function __isset($name)
        {
            return isset($this->attributes[$name]);
        }

        public function toArray()
        {
            return $this->attributes;
        }
    }
}

namespace {

    /** \DI::make('config'): WHMCS's application config (configuration.php). */
    class DI
    {
        public static function make($what)
        {
            if ($what !== 'config') {
                throw new \InvalidArgumentException("DI stand-in: only make('config') is provided, not $what");
            }
            $c = standin_db_config();
            return new \ArrayObject([
                'db_host' => $c['db_host'], 'db_port' => $c['db_port'], 'db_username' => $c['db_username'],
                'db_password' => $c['db_password'], 'db_name' => $c['db_name'],
                'cc_encryption_hash' => standin_cc_hash(),
            ]);
        }
    }
}
