package main

import (
	"archive/tar"
	"compress/gzip"
	"debug/elf"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// packageDir is what `make package` lays out (PVEKEEP_DIST names another
// dist/ folder).
func packageDir(t *testing.T) (dist, pkg string) {
	t.Helper()
	dist = os.Getenv("PVEKEEP_DIST")
	if dist == "" {
		dist = filepath.Join("..", "dist")
	}
	pkg = filepath.Join(dist, "modules", "servers", "pvekeep")
	if _, err := os.Stat(pkg); errors.Is(err, fs.ErrNotExist) {
		msg := "no package at " + pkg + ": run make package first"
		if os.Getenv("PVEKEEP_TEST_DISALLOW_SKIP") == "1" {
			t.Fatalf("skip disallowed (PVEKEEP_TEST_DISALLOW_SKIP=1): %s", msg)
		}
		t.Skip(msg)
	}
	return dist, pkg
}

// The binaries run on any Linux of their architecture: no dynamic loader,
// no shared library (DESIGN §9: glibc 2.34 broke EL8, Ubuntu 20.04,
// Debian 11).
func TestPackagedBinariesAreStatic(t *testing.T) {
	t.Parallel()
	_, pkg := packageDir(t)
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(pkg, "bin", "pvekeep-linux-"+arch)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&0o111 == 0 {
				t.Errorf("%s is not executable (mode %v)", p, fi.Mode())
			}
			f, err := elf.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != machine || f.Class != elf.ELFCLASS64 {
				t.Errorf("%s is for %v/%v, want %v/ELFCLASS64", p, f.Machine, f.Class, machine)
			}
			for _, prog := range f.Progs {
				switch prog.Type {
				case elf.PT_INTERP:
					t.Errorf("%s asks for a dynamic loader (PT_INTERP)", p)
				case elf.PT_DYNAMIC:
					t.Errorf("%s has a dynamic section (PT_DYNAMIC)", p)
				}
			}
			if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
				t.Errorf("%s needs shared libraries %q (DT_NEEDED; err %v)", p, libs, err)
			}
		})
	}
}

// allowedFiles is the package layout of the contract: what WHMCS loads,
// the binaries and the two deny-all .htaccess files. Nothing else: no Go,
// no tests, no stand-in, no email templates (the binary embeds them).
var allowedFiles = []*regexp.Regexp{
	regexp.MustCompile(`^(pvekeep|hooks)\.php$`),
	regexp.MustCompile(`^lib/[A-Za-z0-9_]+\.php$`),
	regexp.MustCompile(`^templates/[A-Za-z0-9_-]+\.tpl$`),
	regexp.MustCompile(`^lang/[a-z]{2}(_[A-Z]{2})?\.json$`),
	regexp.MustCompile(`^cronjob/(cron\.php|\.htaccess)$`),
	regexp.MustCompile(`^bin/(pvekeep-linux-(amd64|arm64)|\.htaccess)$`),
	regexp.MustCompile(`^(LICENSE|README\.md)$`),
}

var requiredFiles = []string{
	"pvekeep.php", "hooks.php", "lib/PvekeepClient.php", "templates/clientarea.tpl", "lang/en.json",
	"cronjob/cron.php", "cronjob/.htaccess", "bin/.htaccess", "bin/pvekeep-linux-amd64", "bin/pvekeep-linux-arm64",
	"LICENSE", "README.md",
}

func packageFiles(t *testing.T, pkg string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(pkg, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestPackageHoldsExactlyWhatWHMCSNeeds(t *testing.T) {
	t.Parallel()
	_, pkg := packageDir(t)
	files := packageFiles(t, pkg)
	for _, f := range files {
		if strings.HasSuffix(f, ".go") {
			t.Errorf("Go source in the package: %s", f)
			continue
		}
		if !slices.ContainsFunc(allowedFiles, func(re *regexp.Regexp) bool { return re.MatchString(f) }) {
			t.Errorf("unexpected file in the package: %s", f)
		}
	}
	for _, f := range requiredFiles {
		if !slices.Contains(files, f) {
			t.Errorf("missing from the package: %s", f)
		}
	}
}

func TestPackageDeniesTheWebServerBinAndCronjob(t *testing.T) {
	t.Parallel()
	_, pkg := packageDir(t)
	for _, dir := range []string{"bin", "cronjob"} {
		b, err := os.ReadFile(filepath.Join(pkg, dir, ".htaccess"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"<IfModule mod_authz_core.c>", "Require all denied", // Apache 2.4
			"<IfModule !mod_authz_core.c>", "Deny from all", // Apache 2.2
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s/.htaccess lacks %q", dir, want)
			}
		}
	}
}

func TestPackageTarballHoldsThePackage(t *testing.T) {
	t.Parallel()
	dist, pkg := packageDir(t)
	tarballs, err := filepath.Glob(filepath.Join(dist, "pvekeep-*.tar.gz"))
	if err != nil || len(tarballs) != 1 {
		t.Fatalf("tarballs in %s: %q (%v), want one", dist, tarballs, err)
	}
	f, err := os.Open(tarballs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var inTar []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			inTar = append(inTar, strings.TrimPrefix(path.Clean(h.Name), "modules/servers/pvekeep/"))
		}
	}
	want := packageFiles(t, pkg)
	slices.Sort(inTar)
	slices.Sort(want)
	if !slices.Equal(inTar, want) {
		t.Errorf("%s holds %q,\nthe package folder %q", tarballs[0], inTar, want)
	}
}
