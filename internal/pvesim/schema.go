package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// schemaGz is the trimmed official API schema (see testdata/README.md).
//
//go:embed testdata/schema.json.gz
var schemaGz []byte

// apiSchema holds the method descriptions of every path the simulator
// serves, keyed by path template ("/nodes/{node}/vzdump") and method.
type apiSchema struct {
	paths map[string]map[string]*methodSchema
}

type methodSchema struct {
	Parameters *propSchema `json:"parameters"`
	Returns    *propSchema `json:"returns"`
	AllowToken *int        `json:"allowtoken"`
	Protected  int         `json:"protected"`
}

// propSchema is the subset of PVE's JSON schema dialect the validator
// understands. Perl writes booleans as 0/1, hence the ints.
type propSchema struct {
	Type                 string                 `json:"type"`
	Format               json.RawMessage        `json:"format"`
	Optional             int                    `json:"optional"`
	Enum                 []any                  `json:"enum"`
	Pattern              string                 `json:"pattern"`
	MaxLength            *int                   `json:"maxLength"`
	MinLength            *int                   `json:"minLength"`
	Minimum              *flexNum               `json:"minimum"`
	Maximum              *flexNum               `json:"maximum"`
	Requires             json.RawMessage        `json:"requires"`
	Alias                string                 `json:"alias"`
	KeyAlias             string                 `json:"keyAlias"`
	DefaultKey           int                    `json:"default_key"`
	Items                *propSchema            `json:"items"`
	Properties           map[string]*propSchema `json:"properties"`
	AdditionalProperties json.RawMessage        `json:"additionalProperties"`

	pattern   *regexp.Regexp         // compiled Pattern, nil when absent or not translatable
	objFormat map[string]*propSchema // Format when it is an inline property-string description
	fmtName   string                 // Format when it is a named format
}

// flexNum is a schema number that Perl sometimes wrote as a string
// (clone's bwlimit has "minimum": "0").
type flexNum float64

func (n *flexNum) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("decode schema number %s: %w", b, err)
	}
	*n = flexNum(f)
	return nil
}

func loadSchema() (*apiSchema, error) {
	zr, err := gzip.NewReader(bytes.NewReader(schemaGz))
	if err != nil {
		return nil, fmt.Errorf("open embedded schema: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("read embedded schema: %w", err)
	}
	var paths map[string]map[string]*methodSchema
	if err := json.Unmarshal(raw, &paths); err != nil {
		return nil, fmt.Errorf("decode embedded schema: %w", err)
	}
	for _, methods := range paths {
		for _, m := range methods {
			if m.Parameters != nil {
				if err := m.Parameters.prepare(); err != nil {
					return nil, err
				}
			}
			if m.Returns != nil {
				if err := m.Returns.prepare(); err != nil {
					return nil, err
				}
			}
		}
	}
	return &apiSchema{paths: paths}, nil
}

// prepare compiles patterns and decodes formats once, recursively.
func (p *propSchema) prepare() error {
	if p.Pattern != "" {
		if re, err := regexp.Compile("^(?:" + perlToGoRegexp(p.Pattern) + ")$"); err == nil {
			p.pattern = re
		}
	}
	if len(p.Format) > 0 {
		switch p.Format[0] {
		case '"':
			if err := json.Unmarshal(p.Format, &p.fmtName); err != nil {
				return fmt.Errorf("decode format: %w", err)
			}
		case '{':
			if err := json.Unmarshal(p.Format, &p.objFormat); err != nil {
				return fmt.Errorf("decode property-string format: %w", err)
			}
			for _, sub := range p.objFormat {
				if err := sub.prepare(); err != nil {
					return err
				}
			}
		}
	}
	if p.Items != nil {
		if err := p.Items.prepare(); err != nil {
			return err
		}
	}
	for _, sub := range p.Properties {
		if err := sub.prepare(); err != nil {
			return err
		}
	}
	return nil
}

// perlToGoRegexp rewrites the stringified Perl qr// forms found in the schema
// ("(?^:…)", "(?^i:…)") into Go syntax.
func perlToGoRegexp(s string) string {
	s = strings.ReplaceAll(s, "(?^i:", "(?i:")
	s = strings.ReplaceAll(s, "(?^:", "(?:")
	return s
}

// indexedProp matches schema keys like "net[n]" against "net0".
var indexedProp = lazyre.New(`^([a-z]+)\[n\]$`)

// indexMax is the highest index PVE accepts for each "name[n]" key.
var indexMax = map[string]int{
	"ide": 3, "sata": 5, "scsi": 30, "virtio": 15, "net": 31, "unused": 255,
	"ipconfig": 31, "hostpci": 15, "usb": 14, "serial": 3, "parallel": 2,
	"numa": 7, "virtiofs": 9, "mp": 255,
}

// lookup finds the schema of a property, resolving "name[n]" keys.
func (p *propSchema) lookup(key string) *propSchema {
	if s, ok := p.Properties[key]; ok {
		return s
	}
	i := strings.IndexAny(key, "0123456789")
	if i <= 0 {
		return nil
	}
	prefix, num := key[:i], key[i:]
	n, err := strconv.Atoi(num)
	if err != nil || strconv.Itoa(n) != num {
		return nil
	}
	s, ok := p.Properties[prefix+"[n]"]
	if !ok {
		return nil
	}
	if max, ok := indexMax[prefix]; ok && n > max {
		return nil
	}
	return s
}

// validateParams checks params the way PVE::JSONSchema::validate does for
// an API call and returns PVE's error map (empty when valid). params is
// normalised in place (scalars for arrays, arrays for -list strings).
func (p *propSchema) validateParams(params map[string]any) map[string]string {
	errs := map[string]string{}
	if p == nil {
		return errs
	}
	// normalize_legacy_param_formats: scalars become one-element arrays,
	// arrays given to "-list" strings are joined.
	for k, v := range params {
		s := p.lookup(k)
		if s == nil || v == nil {
			continue
		}
		switch vv := v.(type) {
		case []any:
			if s.Type == "string" && strings.HasSuffix(s.fmtName, "-list") {
				parts := make([]string, 0, len(vv))
				for _, e := range vv {
					parts = append(parts, scalarString(e))
				}
				params[k] = strings.Join(parts, ",")
			}
		default:
			if s.Type == "array" {
				params[k] = []any{vv}
			}
		}
	}
	for k, s := range p.Properties {
		if indexedProp.MatchString(k) || s.Alias != "" {
			continue
		}
		if params[k] == nil && s.Optional == 0 {
			errs[k] = "property is missing and it is not optional"
		}
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		s := p.lookup(k)
		if s == nil {
			if !additionalAllowed(p.AdditionalProperties) {
				errs[k] = "property is not defined in schema and the schema does not allow additional properties"
			}
			continue
		}
		if v == nil {
			continue
		}
		if msg := s.check(v); msg != "" {
			errs[k] = msg
			continue
		}
		if req := requiredKey(s.Requires); req != "" && params[req] == nil {
			errs[req] = fmt.Sprintf("missing property required by '%s'", k)
		}
	}
	return errs
}

func additionalAllowed(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "0" && s != "false"
}

func requiredKey(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// perlRef names the Perl reference type PVE reports for non-scalar values.
func perlRef(v any) string {
	switch v.(type) {
	case []any:
		return "ARRAY"
	case map[string]any:
		return "HASH"
	case bool:
		return "JSON::PP::Boolean"
	}
	return ""
}

// scalarString renders a scalar the way Perl would stringify it.
func scalarString(v any) string {
	switch vv := v.(type) {
	case string:
		return vv
	case json.Number:
		return vv.String()
	case bool:
		if vv {
			return "1"
		}
		return "0"
	case float64:
		return strconv.FormatFloat(vv, 'f', -1, 64)
	case int:
		return strconv.Itoa(vv)
	}
	return fmt.Sprint(v)
}

var (
	reInteger = lazyre.New(`^[+-]?\d+$`)
	reNumber  = lazyre.New(`^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$`)
)

// check validates one value against its schema (PVE's check_prop) and
// returns the error text, or "" when the value is valid.
func (p *propSchema) check(v any) string {
	if ref := perlRef(v); ref != "" {
		switch {
		case p.Type == "array" && ref == "ARRAY":
			if p.Items != nil {
				for _, e := range v.([]any) {
					if msg := p.Items.check(e); msg != "" {
						return msg
					}
				}
			}
			return ""
		case p.Type == "object" && ref == "HASH":
			return ""
		case p.Type == "boolean" && ref == "JSON::PP::Boolean":
			return ""
		case p.Type == "" || p.Type == "any":
			return ""
		case p.Type == "array" || p.Type == "object":
			return fmt.Sprintf("type check ('%s') failed", p.Type)
		}
		return fmt.Sprintf("type check ('%s') failed - got %s", p.Type, ref)
	}
	s := scalarString(v)
	switch p.Type {
	case "array", "object":
		return fmt.Sprintf("type check ('%s') failed", p.Type)
	case "boolean":
		if s != "0" && s != "1" {
			return fmt.Sprintf("type check ('boolean') failed - got '%s'", s)
		}
	case "integer":
		if !reInteger.MatchString(s) {
			return fmt.Sprintf("type check ('integer') failed - got '%s'", s)
		}
	case "number":
		if !reNumber.MatchString(s) {
			return fmt.Sprintf("type check ('number') failed - got '%s'", s)
		}
	}
	if p.objFormat != nil {
		if msg := checkPropertyString(p.objFormat, s); msg != "" {
			return "invalid format - " + msg
		}
	} else if p.fmtName != "" {
		if msg := checkNamedFormat(p.fmtName, s); msg != "" {
			return "invalid format - " + msg
		}
	}
	if p.pattern != nil && !p.pattern.MatchString(s) {
		return "value does not match the regex pattern"
	}
	if p.MaxLength != nil && len([]rune(s)) > *p.MaxLength {
		return fmt.Sprintf("value may only be %d characters long", *p.MaxLength)
	}
	if p.MinLength != nil && len([]rune(s)) < *p.MinLength {
		return fmt.Sprintf("value must be at least %d characters long", *p.MinLength)
	}
	if reNumber.MatchString(s) {
		f, _ := strconv.ParseFloat(s, 64)
		if p.Maximum != nil && f > float64(*p.Maximum) {
			return fmt.Sprintf("value must have a maximum value of %s", perlNum(float64(*p.Maximum)))
		}
		if p.Minimum != nil && f < float64(*p.Minimum) {
			return fmt.Sprintf("value must have a minimum value of %s", perlNum(float64(*p.Minimum)))
		}
	}
	if len(p.Enum) > 0 {
		names := make([]string, 0, len(p.Enum))
		found := false
		for _, e := range p.Enum {
			es := scalarString(e)
			names = append(names, es)
			if es == s {
				found = true
			}
		}
		if !found {
			return fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", s, strings.Join(names, ", "))
		}
	}
	return ""
}

func perlNum(f float64) string {
	if f == math.Trunc(f) {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// checkPropertyString validates "key=value,…" strings against an inline
// format description, the way parse_property_string does.
func checkPropertyString(format map[string]*propSchema, value string) string {
	var defaultKey string
	for k, s := range format {
		if s.DefaultKey != 0 {
			defaultKey = k
		}
	}
	var errs []string
	seen := map[string]bool{}
	for _, part := range strings.Split(value, ",") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			if defaultKey == "" || seen[defaultKey] {
				errs = append(errs, "value without key, but schema does not define a default key")
				continue
			}
			k, v = defaultKey, part
		}
		s, known := format[k]
		if known && s.Alias != "" {
			// "virtio=MAC": the key names the value of keyAlias (model),
			// the value belongs to alias (macaddr)
			if ka := s.KeyAlias; ka != "" {
				if seen[ka] {
					errs = append(errs, fmt.Sprintf("%s: duplicate key in comma-separated list property", ka))
					continue
				}
				seen[ka] = true
				if ks, ok := format[ka]; ok {
					if msg := ks.check(k); msg != "" {
						errs = append(errs, fmt.Sprintf("%s: %s", ka, msg))
					}
				}
			}
			k = s.Alias
			s, known = format[k]
		}
		if !known {
			errs = append(errs, fmt.Sprintf("%s: property is not defined in schema and the schema does not allow additional properties", k))
			continue
		}
		if seen[k] {
			errs = append(errs, fmt.Sprintf("%s: duplicate key in comma-separated list property", k))
			continue
		}
		seen[k] = true
		if msg := s.check(v); msg != "" {
			errs = append(errs, fmt.Sprintf("%s: %s", k, msg))
		}
	}
	for k, s := range format {
		if s.Optional == 0 && s.Alias == "" && !seen[k] {
			errs = append(errs, fmt.Sprintf("%s: property is missing and it is not optional", k))
		}
	}
	if len(errs) == 0 {
		return ""
	}
	sort.Strings(errs)
	return "format error\n" + strings.Join(errs, "\n") + "\n"
}

var (
	reVMID       = lazyre.New(`^[1-9][0-9]{2,8}$`)
	reNodeName   = lazyre.New(`^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$`)
	reStorageID  = lazyre.New(`(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$`)
	reConfigID   = lazyre.New(`(?i)^[a-z][a-z0-9_-]+$`)
	reRealm      = lazyre.New(`^[A-Za-z][A-Za-z.\-_\d]*[A-Za-z\d]$`)
	reDNSName    = lazyre.New(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$`)
	reKeepOption = lazyre.New(`^keep-(all|last|hourly|daily|weekly|monthly|yearly)$`)
	reDigits     = lazyre.New(`^\d+$`)
	reUnicastMAC = lazyre.New(`(?i)^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$`)
)

var storageContentTypes = map[string]bool{
	"images": true, "rootdir": true, "vztmpl": true, "iso": true,
	"backup": true, "snippets": true, "import": true,
}

// namedFormats are the registered formats that matter for the served
// endpoints; each returns PVE's error text. Formats not listed here are
// accepted as they come (a known gap, see doc.go).
var namedFormats = map[string]func(string) string{
	"pve-vmid": func(v string) string {
		if !reVMID.MatchString(v) {
			return "value does not look like a valid VM ID\n"
		}
		return ""
	},
	"pve-node": func(v string) string {
		if !reNodeName.MatchString(v) {
			return "value does not look like a valid node name\n"
		}
		return ""
	},
	"pve-storage-id": func(v string) string {
		if len(v) < 2 {
			return fmt.Sprintf("storage ID '%s' cannot be shorter than 2 characters\n", v)
		}
		if !reStorageID.MatchString(v) {
			return fmt.Sprintf("storage ID '%s' contains illegal characters\n", v)
		}
		return ""
	},
	"pve-configid": func(v string) string {
		if !reConfigID.MatchString(v) {
			return fmt.Sprintf("invalid configuration ID '%s'\n", v)
		}
		return ""
	},
	"pve-realm": func(v string) string {
		if !reRealm.MatchString(v) {
			return fmt.Sprintf("realm name '%s' contains illegal characters\n", v)
		}
		return ""
	},
	"dns-name": func(v string) string {
		if !reDNSName.MatchString(v) {
			return fmt.Sprintf("value '%s' does not look like a valid DNS name\n", v)
		}
		return ""
	},
	"pve-storage-content": func(v string) string {
		if !storageContentTypes[v] {
			return fmt.Sprintf("invalid content type '%s'\n", v)
		}
		return ""
	},
	"mac-addr": func(v string) string {
		if !reUnicastMAC.MatchString(v) {
			return "value does not look like a valid unicast MAC address\n"
		}
		return ""
	},
	"pve-task-status-type": func(v string) string {
		switch strings.ToLower(v) {
		case "ok", "error", "warning", "unknown":
			return ""
		}
		return fmt.Sprintf("invalid status type '%s'\n", v)
	},
	"prune-backups": func(v string) string {
		// accepted loosely: known keys with non-negative integer values
		for _, part := range strings.Split(v, ",") {
			if part == "" {
				continue
			}
			k, val, ok := strings.Cut(part, "=")
			if !ok || !reKeepOption.MatchString(k) {
				return fmt.Sprintf("format error\n%s: property is not defined in schema and the schema does not allow additional properties\n", k)
			}
			if !reDigits.MatchString(val) {
				return fmt.Sprintf("format error\n%s: type check ('integer') failed - got '%s'\n", k, val)
			}
		}
		return ""
	},
}

// checkNamedFormat applies a named format, including its -list and -opt
// variants (PVE::JSONSchema::check_format).
func checkNamedFormat(name, value string) string {
	base, kind := name, ""
	if b, ok := strings.CutSuffix(name, "-list"); ok {
		base, kind = b, "list"
	} else if b, ok := strings.CutSuffix(name, "-opt"); ok {
		base, kind = b, "opt"
	}
	fn, ok := namedFormats[base]
	if !ok {
		return ""
	}
	switch kind {
	case "list":
		for _, v := range splitList(value) {
			if msg := fn(v); msg != "" {
				return msg
			}
		}
		return ""
	case "opt":
		if value == "" {
			return ""
		}
	}
	return fn(value)
}

// splitList is PVE::Tools::split_list.
func splitList(s string) []string {
	if strings.Contains(s, "\x00") {
		return strings.Split(s, "\x00")
	}
	s = strings.NewReplacer(",", " ", ";", " ").Replace(s)
	return strings.Fields(s)
}

// typedValue converts a config value to the JSON type the schema gives it
// (PVE returns integers and booleans as numbers).
func (p *propSchema) typedValue(key, value string) any {
	if p == nil {
		return value
	}
	s := p.lookup(key)
	if s == nil {
		return value
	}
	switch s.Type {
	case "integer", "boolean":
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			return n
		}
	case "number":
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
		}
	}
	return value
}
