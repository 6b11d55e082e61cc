package pve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// PVE's wire quirks (bpg ADR-002): integers sometimes arrive as strings,
// booleans as 0/1, "1"/"0" or true/false, and optional fields are simply
// absent. These two types decode all of them.

// flexInt decodes a JSON number or a numeric string.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*n = 0
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*n = 0
			return nil
		}
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = flexInt(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*n = flexInt(f)
	return nil
}

// flexBool decodes true/false, 0/1 and their string forms.
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		*v = true
	case "0", "false", "no", "off", "", "null":
		*v = false
	default:
		return fmt.Errorf("not a boolean: %s", b)
	}
	return nil
}

// rawString renders any JSON scalar as PVE would print it: strings as
// they are, numbers as written, booleans as 1/0.
func rawString(b json.RawMessage) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return ""
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err == nil {
			return s
		}
	case 't':
		return "1"
	case 'f':
		return "0"
	}
	return string(b)
}

func boolParam(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
