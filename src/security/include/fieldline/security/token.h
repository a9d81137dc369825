#pragma once
// Secrets: tokens are 256 random bits, shown once and stored only as a salted SHA-256 hash.
// A slow KDF is unnecessary because the secret itself carries 256 bits of entropy.

#include <string>
#include <string_view>

#include "fieldline/core/result.h"

namespace fieldline::security {

struct TokenHash {
  std::string salt;  // 16 random bytes
  std::string hash;  // SHA-256(salt || token), 32 bytes
};

// A new token: `prefix` followed by 256 random bits in base64url (e.g. "fld_…").
Result<std::string> generate_token(std::string_view prefix);
Result<TokenHash> hash_token(std::string_view token);
// A non-secret lookup key for a token (64 bits of an unsalted SHA-256): lets a server find
// whose token it was handed without trying every salted hash, and reveals nothing usable
// about a 256-bit secret. The salted hash still decides.
std::string token_lookup_key(std::string_view token);
// Constant-time check of `token` against a stored hash.
bool verify_token(std::string_view token, const TokenHash& stored);
std::string to_hex(std::string_view bytes);
Result<std::string> from_hex(std::string_view hex);
// SHA-256 of `data` in hex (payload fingerprints for quarantine and lineage).
std::string sha256_hex(std::string_view data);
// Standard base64 with padding (RFC 4648 section 4), for bytes inside JSON.
std::string to_base64(std::string_view bytes);
Result<std::string> from_base64(std::string_view text);
// HMAC-SHA256 (webhook signatures and the like).
std::string hmac_sha256(std::string_view key, std::string_view data);

}  // namespace fieldline::security
