package schema

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []string // "version name" in order
		wantErr string
	}{
		{
			name: "sorted by number",
			files: fstest.MapFS{
				"m/0010_ten.sql": file("SELECT 10"),
				"m/0002_two.sql": file("SELECT 2"),
			},
			want: []string{"2 two", "10 ten"},
		},
		{
			name:    "bad name",
			files:   fstest.MapFS{"m/1_first.sql": file("SELECT 1")},
			wantErr: "name is not NNNN_name.sql",
		},
		{
			name: "version twice",
			files: fstest.MapFS{
				"m/0001_a.sql": file("SELECT 1"),
				"m/0001_b.sql": file("SELECT 1"),
			},
			wantErr: "version 0001 used twice",
		},
		{
			name:    "no files",
			files:   fstest.MapFS{"m": &fstest.MapFile{Mode: fs.ModeDir}},
			wantErr: "no files",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := load(tt.files, "m")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("load error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var names []string
			for _, m := range got {
				names = append(names, fmt.Sprintf("%d %s", m.version, m.name))
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("load = %q, want %q", names, tt.want)
			}
		})
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	t.Parallel()
	sets := []struct {
		files fs.FS
		dir   string
	}{{rippleFiles, "migrations"}, {demoFiles, "demo"}}
	for _, set := range sets {
		if m, err := load(set.files, set.dir); err != nil || len(m) == 0 {
			t.Errorf("embedded %s: %d migrations, error %v", set.dir, len(m), err)
		}
	}
}
