// Resumable SHA-256 / SHA-512 whose running state is plain bytes, so an upload's digest progress
// can be stored next to its data and continued by another process (system libcrypto).
#ifndef PIERONE_HASHSTATE_H
#define PIERONE_HASHSTATE_H

#include <stddef.h>
#include <stdint.h>

/// Bytes of the state of algorithm 256 or 512; 0 for anything else.
size_t pierone_hash_state_size(int algorithm);
/// Starts a digest in `state` (of `pierone_hash_state_size` bytes).
void pierone_hash_init(int algorithm, void *state);
void pierone_hash_update(int algorithm, void *state, const void *data, size_t length);
/// Writes 32 or 64 bytes to `digest`; the state is spent afterwards.
void pierone_hash_final(int algorithm, void *state, uint8_t *digest);

#endif
