// Package storagetest is the contract suite for the ports in
// internal/storage. Every adapter joins it with a few lines:
//
//	func TestBlobStore(t *testing.T) {
//		storagetest.RunBlobStore(t, func(t *testing.T) storage.BlobStore { return newStore(t) })
//	}
//
// The suite, not the adapters, defines what the port docs promise. New
// behaviour is added here first, then to each adapter.
//
// Rules for constructors: newStore is called once per subtest, must return
// an empty store isolated from every other one (its own directory, bucket,
// table or key prefix), and registers its own cleanup with t.Cleanup.
// Subtests call t.Parallel, so stores must not share mutable state.
//
// Semantics the suite pins down where the port docs are silent:
//
//   - Errors: every failure the port names is tested with errors.Is against
//     the storage sentinels. A reader that fails during Put or UploadPart
//     makes the call fail with an error that wraps the reader's error; a
//     reader that ends early wraps io.ErrUnexpectedEOF; a cancelled ctx
//     yields an error that wraps context.Canceled. CompleteMultipart with an
//     ETag that is not the current one for its part number (S3 InvalidPart)
//     wraps storage.ErrConflict; UploadPart or CompleteMultipart on an
//     unknown or aborted upload (S3 NoSuchUpload) wraps storage.ErrNotFound.
//   - Ranges: Open(offset, length) with length past the end is cut at the
//     end; offset == size, and length == 0, give an empty reader (S3 answers
//     both with an error or the whole object, so an S3 adapter must special
//     case them); offset > size or offset < 0 is an error.
//   - Keys are opaque: "a/b", "a/b/c" and "a/b.c" are independent objects
//     that can all exist at once (as in S3).
//   - Times: adapters must keep at least millisecond precision. The suite
//     only stores times truncated to the millisecond, in UTC, and compares
//     them with time.Time.Equal (cmp uses it), so the location does not
//     matter and the zero time must come back as the zero time.
//   - Nil and empty slices and maps are interchangeable in results
//     (cmpopts.EquateEmpty): a store may drop empty collections.
//   - Byte values (Manifest.Body, Setting.Value, Upload.HashState) come back
//     byte for byte.
//   - Versions: UpdateUpload and PutSetting store Version = prev+1 whatever
//     Version the caller put in the struct, so two writers that read the
//     same version can never both win. CreateUpload stores the session as
//     given, Version included.
//   - Listings of an empty or unknown repository, subject or table are
//     empty, not an error.
//   - Batch reads (GetBlobs, GetManifests) accept duplicates and more than
//     100 digests (DynamoDB BatchGetItem takes neither, so the adapter must
//     dedupe and chunk).
package storagetest
