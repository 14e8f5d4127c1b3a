"""The live side: Socket.IO namespaces, the one writer of live state, presence, recording desk, live board."""
