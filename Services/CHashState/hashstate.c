// The low-level SHA interfaces are deprecated in OpenSSL 3 in favour of EVP, whose contexts are
// opaque and cannot be saved; these plain structs can, which is the point here.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include "hashstate.h"

size_t pierone_hash_state_size(int algorithm) {
    switch (algorithm) {
    case 256: return sizeof(SHA256_CTX);
    case 512: return sizeof(SHA512_CTX);
    default: return 0;
    }
}

void pierone_hash_init(int algorithm, void *state) {
    if (algorithm == 256) SHA256_Init((SHA256_CTX *)state);
    else SHA512_Init((SHA512_CTX *)state);
}

void pierone_hash_update(int algorithm, void *state, const void *data, size_t length) {
    if (algorithm == 256) SHA256_Update((SHA256_CTX *)state, data, length);
    else SHA512_Update((SHA512_CTX *)state, data, length);
}

void pierone_hash_final(int algorithm, void *state, uint8_t *digest) {
    if (algorithm == 256) SHA256_Final(digest, (SHA256_CTX *)state);
    else SHA512_Final(digest, (SHA512_CTX *)state);
}
