// Package local is the embedded storage adapter: blobs as files under a
// directory (BlobStore), metadata in one bbolt file (MetaStore). It backs
// `skiff serve` and the registry's end-to-end tests, and passes the same
// storagetest contract suite as the S3 + DynamoDB adapter.
//
// # Blob layout
//
//	<dir>/
//	├── objects/                    one file per key
//	│   └── blobs/sha256/ab/abcd…@    key "blobs/sha256/ab/abcd…"
//	│       ├── header "skiffD1\n"    then the object's bytes, or
//	│       └── header "skiffC1\n"    then a composite: {"upload":id,"parts":[{"n":1,"size":…},…]}
//	├── multipart/<upload id>/      an upload in progress
//	│   ├── key                       the key it was created for
//	│   ├── 00001                     part 1: "skiffP1\n", 16-hex ETag, bytes
//	│   └── @tmp-…                    a part being written
//	├── parts/<upload id>/          the parts of a completed upload, owned by
//	│   └── 00001 …                   the composite object that names them
//	└── trash/<random>/             directories being removed
//
// Keys are [a-z0-9/._-] with no empty, "." or ".." component; each slash is
// a directory. An object's file name ends with "@" and temporary files
// start with "@", neither of which a key component can do, so key "a/b"
// (file a/b@) and key "a/b/c" (directory a/b/) coexist as they do in S3.
// Directories emptied by Delete stay: removing them would race with a Put
// creating its temporary file there.
//
// Every write goes to a temporary file in the destination directory, is
// fsynced, renamed into place and the directory fsynced, so after a crash a
// key holds its old object or its new one. The header makes a plain object
// and a composite interchangeable by that one rename.
//
// CompleteMultipart copies no data: it moves multipart/<id> to parts/<id>
// (one rename, which also makes a second completion or a late abort find no
// upload) and writes the composite at the key. Replacing or deleting a
// composite discards its parts directory afterwards. A crash between those
// steps leaves an unreferenced directory: garbage, never visible; the trash
// is emptied when a BlobStore is created.
//
// # Metadata layout
//
// One bbolt file, values JSON. Keys join their parts with a 0x00 byte, which
// no repository name, tag or digest contains: all items of a repository
// share the prefix "repo\x00" and no other repository's items do (so "a/b"
// never sees "a/bc" or "a/b/c"), and within it they sort by the last part.
// A listing seeks to prefix+Page.After and reads at most Page.Limit items.
//
//	meta/
//	└── schema                                  "1"
//	repositories/
//	└── <repo>                                  {}
//	blobs/
//	└── <repo>\x00<digest>                      storage.Blob
//	manifests/
//	└── <repo>\x00<digest>                      storage.Manifest
//	tags/
//	└── <repo>\x00<tag>                         storage.Tag
//	referrers/
//	└── <repo>\x00<subject>\x00<digest>         storage.Referrer
//	absent/
//	└── <repo>\x00<child>\x00<index>            storage.Absent
//	uploads/
//	└── <upload id>                             storage.Upload
//	settings/
//	└── <key>                                   storage.Setting
//	contents/
//	└── <digest>                                storage.Content
//	linked/
//	└── <repo>                                  {}: a repository with blob links
//	counters/
//	└── <key>                                   {n, ends}: a window's count
//
// Conditional writes (UpdateUpload, PutSetting, DeleteSetting, CreateUpload)
// and Reserve and Release read and write in one bbolt transaction; bbolt runs one
// writer at a time, so the check and the write are atomic.
package local
