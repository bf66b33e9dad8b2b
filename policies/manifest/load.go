package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// StdinName is how standard input appears in Document.File and in errors.
const StdinName = "<stdin>"

// Load reads the manifests at each path, in order: "-" reads stdin, a file is
// read whatever its extension, and a directory is walked recursively in
// lexical order for files ending in .yaml, .yml or .json (in any case).
// While walking, hidden files and directories (names starting with ".")
// and those matching opts.Ignore are skipped, and symbolic links to
// directories are not followed, so that link loops cannot hang the walk;
// symbolic links to files are read.
//
// Like Read, Load returns every document that parsed and all problems of all
// paths joined with errors.Join, so that the caller can report them at once.
// A path that does not exist is one of those problems.
func Load(paths []string, stdin io.Reader, opts Options) ([]Document, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &loader{opts: opts.withDefaults(), stdin: stdin}
	for _, p := range paths {
		l.load(p)
	}
	return l.docs, errors.Join(l.errs...)
}

// loader accumulates what Load finds.
type loader struct {
	opts      Options
	stdin     io.Reader
	stdinRead bool
	docs      []Document
	errs      []error
}

func (l *loader) load(p string) {
	if p == "-" {
		l.loadStdin()
		return
	}
	info, err := os.Stat(p) // follows a link the user named explicitly
	if err != nil {
		l.errs = append(l.errs, pathError(p, err))
		return
	}
	if info.IsDir() {
		l.walk(p, p)
		return
	}
	l.loadFile(p)
}

func (l *loader) loadStdin() {
	switch {
	case l.stdin == nil:
		l.errs = append(l.errs, fmt.Errorf("reading %s: no standard input available", StdinName))
	case l.stdinRead:
		l.errs = append(l.errs, fmt.Errorf(`reading %s: "-" given more than once; standard input can be read only once`, StdinName))
	default:
		l.stdinRead = true
		l.add(read(StdinName, l.stdin, l.opts))
	}
}

func (l *loader) loadFile(p string) {
	f, err := os.Open(p)
	if err != nil {
		l.errs = append(l.errs, pathError(p, err))
		return
	}
	defer f.Close()
	l.add(read(p, f, l.opts))
}

func (l *loader) add(docs []Document, errs []error) {
	l.docs = append(l.docs, docs...)
	l.errs = append(l.errs, errs...)
}

// walk reads the manifests under dir, which is root or below it.
func (l *loader) walk(root, dir string) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		// ReadDir returns what it could read before the error; read that too.
		l.errs = append(l.errs, pathError(dir, err))
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(dir, name)
		if l.ignored(root, p, name) {
			continue
		}
		typ := e.Type()
		if typ&fs.ModeSymlink != 0 {
			info, err := os.Stat(p)
			if err != nil {
				if isManifestName(name) {
					l.errs = append(l.errs, pathError(p, err))
				}
				continue
			}
			typ = info.Mode().Type()
			if typ.IsDir() {
				continue // not followed: a link may point back up the tree
			}
		}
		switch {
		case typ.IsDir():
			l.walk(root, p)
		case typ.IsRegular() && isManifestName(name):
			l.loadFile(p)
		}
	}
}

// ignored reports whether opts.Ignore excludes p, a file or directory found
// while walking root.
func (l *loader) ignored(root, p, name string) bool {
	slashPath := filepath.ToSlash(p)
	rel, err := filepath.Rel(root, p)
	if err != nil {
		rel = name
	}
	rel = filepath.ToSlash(rel)
	for _, pattern := range l.opts.Ignore {
		for _, candidate := range [...]string{name, slashPath, rel} {
			// Patterns were checked by Validate, so Match cannot fail.
			if ok, _ := path.Match(pattern, candidate); ok {
				return true
			}
		}
	}
	return false
}

// isManifestName reports whether a file found in a directory is read.
func isManifestName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// pathError words a file system error as "reading PATH: problem": the
// *fs.PathError's own text ("open PATH: ...") would repeat the path after
// naming a system call the user never asked for.
func pathError(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("reading %s: %w", p, err)
}
