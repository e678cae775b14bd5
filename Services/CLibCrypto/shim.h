// The system libcrypto (Debian's libssl-dev), used only where swift-crypto cannot serve:
// PKCS#7 signature verification of EC2 instance identity documents.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
