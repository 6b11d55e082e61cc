package pvekeep

import "testing"

func TestActorValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		actor Actor
		want  Reason // "" = valid
	}{
		{"client", Actor{Type: ActorClient, ID: 7}, ""},
		{"admin", Actor{Type: ActorAdmin, ID: 1}, ""},
		{"system", Actor{Type: ActorSystem}, ""},
		{"client area with nobody logged in", Actor{Type: ActorClient, ID: 0}, ReasonForbidden},
		{"negative client id", Actor{Type: ActorClient, ID: -3}, ReasonInvalidInput},
		{"admin without id", Actor{Type: ActorAdmin, ID: 0}, ReasonInvalidInput},
		{"unknown type", Actor{Type: "root", ID: 1}, ReasonInvalidInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReasonOf(tc.actor.Validate()); got != tc.want {
				t.Errorf("Validate(%+v) reason = %q, want %q", tc.actor, got, tc.want)
			}
		})
	}
}
