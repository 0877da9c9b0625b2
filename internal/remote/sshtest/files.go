package sshtest

import (
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"
)

// Path is where the scripted host's file hostPath lives on this machine.
func (s *Server) Path(hostPath string) string {
	return filepath.Join(s.root, filepath.FromSlash(path.Clean("/"+hostPath)))
}

// WriteFile puts a file on the scripted host, making its directories.
func (s *Server) WriteFile(t testing.TB, hostPath string, data []byte, mode os.FileMode) {
	t.Helper()
	p := s.Path(hostPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// ReadFile reads a file of the scripted host; ok is false when it does not
// exist.
func (s *Server) ReadFile(t testing.TB, hostPath string) (data []byte, ok bool) {
	t.Helper()
	data, err := os.ReadFile(s.Path(hostPath))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return data, true
}

// Owner is the uid and gid an SFTP client gave the scripted host's file
// (the server records them rather than change the real file's owner); ok is
// false when none was given.
func (s *Server) Owner(hostPath string) (uid, gid uint32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.owners[path.Clean("/"+hostPath)]
	return o[0], o[1], ok
}

// rootFS serves SFTP requests from the server's root, as a chroot would.
type rootFS struct{ s *Server }

func (fs *rootFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	return os.Open(fs.s.Path(r.Filepath))
}

func (fs *rootFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return fs.open(r)
}

func (fs *rootFS) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	return fs.open(r)
}

func (fs *rootFS) open(r *sftp.Request) (*os.File, error) {
	pf := r.Pflags()
	flags := os.O_WRONLY
	if pf.Read {
		flags = os.O_RDWR
	}
	if pf.Creat {
		flags |= os.O_CREATE
	}
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	// 0600: remote starts sftp-server with umask 077.
	return os.OpenFile(fs.s.Path(r.Filepath), flags, 0o600)
}

func (fs *rootFS) Filecmd(r *sftp.Request) error {
	p := fs.s.Path(r.Filepath)
	switch r.Method {
	case "Setstat":
		attrs, flags := r.Attributes(), r.AttrFlags()
		if flags.Size {
			if err := os.Truncate(p, int64(attrs.Size)); err != nil {
				return err
			}
		}
		if flags.Permissions {
			if err := os.Chmod(p, attrs.FileMode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
				return err
			}
		}
		if flags.UidGid {
			if _, err := os.Stat(p); err != nil {
				return err
			}
			fs.s.mu.Lock()
			fs.s.owners[path.Clean(r.Filepath)] = [2]uint32{attrs.UID, attrs.GID}
			fs.s.mu.Unlock()
		}
		return nil
	case "Rename":
		if _, err := os.Stat(fs.s.Path(r.Target)); err == nil {
			return os.ErrExist
		}
		return fs.rename(r)
	case "Remove":
		return os.Remove(p)
	case "Rmdir":
		return os.Remove(p)
	case "Mkdir":
		return os.Mkdir(p, 0o755)
	}
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename replaces the target, as rename(2) does.
func (fs *rootFS) PosixRename(r *sftp.Request) error { return fs.rename(r) }

func (fs *rootFS) rename(r *sftp.Request) error {
	if err := os.Rename(fs.s.Path(r.Filepath), fs.s.Path(r.Target)); err != nil {
		return err
	}
	fs.s.mu.Lock()
	defer fs.s.mu.Unlock()
	from, to := path.Clean(r.Filepath), path.Clean(r.Target)
	if o, ok := fs.s.owners[from]; ok {
		fs.s.owners[to] = o
		delete(fs.s.owners, from)
	} else {
		delete(fs.s.owners, to)
	}
	return nil
}

func (fs *rootFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := fs.s.Path(r.Filepath)
	switch r.Method {
	case "Stat":
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{fs.withOwner(r.Filepath, fi)}, nil
	case "List":
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var list listerAt
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				return nil, err
			}
			list = append(list, fs.withOwner(path.Join(r.Filepath, e.Name()), fi))
		}
		return list, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// withOwner reports the owner recorded for hostPath, if any.
func (fs *rootFS) withOwner(hostPath string, fi os.FileInfo) os.FileInfo {
	fs.s.mu.Lock()
	defer fs.s.mu.Unlock()
	if o, ok := fs.s.owners[path.Clean(hostPath)]; ok {
		return ownedInfo{fi, o[0], o[1]}
	}
	return fi
}

type ownedInfo struct {
	os.FileInfo
	uid, gid uint32
}

func (o ownedInfo) Uid() uint32 { return o.uid }
func (o ownedInfo) Gid() uint32 { return o.gid }

type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n+int(off) == len(l) {
		return n, io.EOF
	}
	return n, nil
}
