// Package awsstore implements the storage ports on AWS: storage.BlobStore
// on S3 (BlobStore, s3*.go) and storage.MetaStore on DynamoDB (MetaStore,
// dynamo*.go). This file documents both layouts once; the code refers here.
//
// # S3
//
// S3 blob keys: see s3.go.
//
// # DynamoDB: one table
//
// MetaStore keeps all metadata in one on-demand table with two string
// keys, PK (partition) and SK (sort), and no secondary index.
// CreateTable makes it (tests, `skiff serve`); deployed tables come from
// infra/. The item tree, by partition key:
//
//	<table>
//	├── PK "REPOS"                              the catalog
//	│   └── SK <repo>                           (no attributes)
//	├── PK "LINKED"                             repositories with blob links (the collector's)
//	│   └── SK <repo>                           (no attributes)
//	├── PK "R#<repo>"                           one partition per repository
//	│   ├── SK "B#<digest>"                     blob link: size, key, linked (N, Unix ns),
//	│   │                                       doomed (a collection's mark)
//	│   ├── SK "M#<digest>"                     manifest: mediaType, size, body (B, when
//	│   │                                       inline), key, artifactType, subject,
//	│   │                                       annotations (M), refs (L, in order), created,
//	│   │                                       touched (N, Unix ns), doomed, expired (BOOL):
//	│   │                                       a retention policy's marks
//	│   ├── SK "T#<tag>"                        tag: digest, updated (N, Unix ns)
//	│   ├── SK "A#<child>#<index>"              a child the sparse index does not have: platform
//	│   └── SK "F#<subject>#<digest>"           referrer of subject: mediaType, size,
//	│                                           artifactType, annotations (M)
//	├── PK "U#<upload id>"                      one partition per upload session
//	│   └── SK "U"                              repo, offset, version, hashState (M of B),
//	│                                           key, multipartId, parts (L), tail (L),
//	│                                           claim, claimUntil, started, expires,
//	│                                           expiresAt (N, epoch seconds: the TTL),
//	│                                           digest (what a commit completes at key)
//	├── PK "D#<2 hex digits>"                   content records, 256 shards by digest
//	│   └── SK <digest>                         size, key (the one stored copy), linked
//	│                                           (N, Unix ns: the last push that linked it)
//	├── PK "SETTINGS"
//	│   └── SK <setting key>                    value (B), version
//	└── PK "C#<counter key>"                    one partition per counter (failed logins)
//	    └── SK "C"                              n (N), ends (N, epoch ms), expiresAt (TTL)
//
// Names held by the key (digest, tag, upload id, setting key) are not
// repeated as attributes. Times are RFC 3339 strings in UTC with
// nanoseconds (the port needs milliseconds); a zero time is an absent
// attribute. Empty optional attributes are left out.
//
// Why this shape:
//
//   - A repository is a partition, so every repository-scoped listing is a
//     Query on one partition key, never a Scan, and isolation is
//     structural: "a/b", "a/bc" and "a/b/c" are different partition keys,
//     not prefixes matched against each other. Within a partition the
//     two-byte type prefixes ("B#", "M#", "T#", "F#", "A#") keep kinds apart,
//     and lexical order of the sort key is the order the port lists in.
//   - Referrers sort by subject, then digest, so one subject's referrers are
//     one begins_with range. The subject is followed by '#', which no
//     digest contains, so a subject's range never reaches into another's
//     (sha256:… and sha512:… of the same bytes included).
//   - Upload sessions get a partition each rather than living under
//     R#<repo>: they are the most written items (every PATCH), and parallel
//     uploads to one repository then spread over partitions.
//   - Content records are sharded by the digest's first byte: every new
//     blob writes one, so a single partition would cap pushes at its
//     1,000 writes a second, while a collection still lists them with 256
//     Queries.
//   - REPOS and SETTINGS are single partitions: small, written rarely
//     (PutRepository once per process and repository, settings by
//     operators), read in order.
//
// # Requests per method
//
// Every method is one request except batch reads and multi-page listings.
// Reads are strongly consistent, since the registry reads its own writes
// (a client HEADs a manifest right after PUTting it).
//
//	GetBlob, GetManifest, GetTag,      1 GetItem
//	GetUpload, GetSetting,
//	HasRepository
//	GetBlobs, GetManifests             ceil(distinct digests / 100) BatchGetItem (0 for none),
//	                                   plus resends of UnprocessedKeys with backoff
//	PutBlob, PutManifest, PutTag,      1 PutItem, unconditional (idempotent; the last tag
//	PutReferrer, PutRepository         writer wins)
//	DeleteBlob, DeleteManifest,        1 DeleteItem if attribute_exists(PK);
//	DeleteTag                          a failed condition is ErrNotFound
//	DeleteReferrer                     1 DeleteItem, unconditional
//	ListTags                           1 Query per page: PK = R#<repo>, begins_with(SK, "T#"),
//	                                   ExclusiveStartKey SK "T#"+After, Limit
//	ListReferrers                      1 Query per page: begins_with(SK, "F#<subject>#")
//	PutAbsent                          1 PutItem
//	ListBlobs, ListManifests           1 Query per page: begins_with(SK, "B#") / "M#"
//	RefreshBlob                        1 UpdateItem SET linked REMOVE doomed if it exists
//	DoomBlob                           1 UpdateItem SET doomed if unmarked and linked < before
//	DeleteDoomedBlob                   1 DeleteItem if doomed = token
//	UpsertContent                      1 UpdateItem SET key, size if_not_exists, linked
//	TouchContent                       1 UpdateItem SET linked if it exists
//	GetContent                         1 GetItem
//	DeleteContent                      1 DeleteItem if key = k and linked < before
//	ListContents                       1 Query per shard and page
//	                                   (a failed condition of DoomBlob, DeleteDoomedBlob or
//	                                   DeleteContent costs 1 GetItem to tell ErrConflict
//	                                   from ErrNotFound)
//	ListAbsent                         1 Query per page: begins_with(SK, "A#<child>#")
//	ListRepositories, ListSettings,    1 Query per page on REPOS / SETTINGS / LINKED
//	ListLinkedRepositories
//	PutLinkedRepository                1 PutItem, unconditional
//	CreateUpload                       1 PutItem if attribute_not_exists(PK), else ErrExists
//	UpdateUpload                       1 PutItem if version = prev (stores prev+1), else
//	                                   ErrConflict (a deleted session fails too)
//	Reserve                            1 UpdateItem ADD n if ends > now and n < limit; if
//	                                   that condition fails, 1 PutItem (n = 1) if the item
//	                                   is missing or ends <= now; if that fails too, 1
//	                                   GetItem: a full window is refused, a lost race
//	                                   starts over
//	Release                            1 UpdateItem ADD n -1 if ends = the reserved window's
//	                                   and 0 < n < limit
//	GetCounts                          ceil(keys / 100) BatchGetItem
//	PutSetting                         1 PutItem if attribute_not_exists(PK) (prev 0) or
//	                                   version = prev; stores prev+1, else ErrConflict
//	DeleteSetting                      1 DeleteItem if attribute_not_exists(PK) OR
//	                                   version = prev, returning the old item: failed
//	                                   condition is ErrConflict, no old item ErrNotFound
//
// A Query with a Limit and no filter returns the whole page unless it
// passes 1 MB, when the adapter follows LastEvaluatedKey; without a limit
// it pages through the whole range. Page.After need not name an existing
// item: Query resumes strictly after the ExclusiveStartKey in key order.
//
// # No transactions
//
// Every port operation reads or writes a single item, so nothing needs
// TransactWriteItems (which dynalite, the test stand-in, lacks anyway).
// The registry core orders its multi-item changes so that each crash point
// leaves a valid state (for example, blob links before the manifest that
// names them, the manifest before the tags that point at it). The items that concurrent requests race on, upload sessions
// and settings, carry a version and are written with a condition on it:
// of two writers that read the same version exactly one wins, the other
// gets ErrConflict and re-reads.
//
// # Stand-in
//
// Tests run against dynalite (internal/standin), which supports
// conditional writes, BatchGetItem and Query paging but has no
// transactions and no UpdateTimeToLive: CreateTable tolerates the missing
// TTL call, so upload sessions there are simply never expired.
package awsstore
