"""What cached outputs are made from: videos' fingerprints, splits' and shards' identities,
and every stage's cache description."""
