// Package store defines where mcpauth keeps API key records: the [KeyStore]
// interface, the [Key] record, and [Memory], an in-memory implementation.
//
// # Contract
//
// A KeyStore never sees a raw API key. It holds the key's public ID, the hash
// of its secret and the settings that go with it. Lookups are by key ID.
// Every method takes a context and must honour its cancellation.
//
// A method that cannot find the key it was asked about returns an error that
// satisfies errors.Is(err, [ErrNotFound]); any other error means the store is
// broken or unreachable, and the middleware answers 503 (fail closed).
// Creating a key whose ID already exists returns [ErrDuplicate].
//
// Extra abilities are optional interfaces found by type assertion:
// [KeyLister] (list a user's keys), [KeyUpdater] (change a key's expiry, used
// by rotation), [Toucher] (record last-used times in batches),
// [RevocationLister] (keys revoked by other instances), [ExpiringLister]
// (keys about to expire, for notices) and [AddressRecorder] (client
// addresses seen per key, so that key.new_ip fires once per address across
// restarts and instances). A store without one loses only that ability.
//
// # Conformance
//
// Package storetest holds the suite every implementation must pass:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.KeyStore { return newMyStore(t) })
//	}
//
// A store whose keys must belong to existing users passes a function that
// creates them: storetest.RunWithOptions(t, newStore, &storetest.Options{User: ...}).
package store
