#pragma once
// MQTT 3.1.1 and 5.0 codec: bytes <-> typed packets, no sockets, no Asio. A malformed packet
// is an error carrying the MQTT 5 reason code the session sends back (or disconnects with).
// The decoder reads untrusted input: every length is checked; it never reads out of bounds.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fieldline/core/result.h"

namespace fieldline::transport::mqtt {

enum class PacketType : uint8_t {
  connect = 1, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe, suback, unsubscribe, unsuback,
  pingreq, pingresp, disconnect, auth
};

// MQTT 5 reason codes used by the server.
namespace reason {
inline constexpr uint8_t success = 0x00;
inline constexpr uint8_t granted_qos1 = 0x01;
inline constexpr uint8_t disconnect_with_will = 0x04;
inline constexpr uint8_t no_matching_subscribers = 0x10;
inline constexpr uint8_t unspecified_error = 0x80;
inline constexpr uint8_t malformed_packet = 0x81;
inline constexpr uint8_t protocol_error = 0x82;
inline constexpr uint8_t implementation_specific_error = 0x83;
inline constexpr uint8_t unsupported_protocol_version = 0x84;
inline constexpr uint8_t client_identifier_not_valid = 0x85;
inline constexpr uint8_t bad_username_or_password = 0x86;
inline constexpr uint8_t not_authorized = 0x87;
inline constexpr uint8_t server_unavailable = 0x88;
inline constexpr uint8_t server_busy = 0x89;
inline constexpr uint8_t server_shutting_down = 0x8B;
inline constexpr uint8_t keep_alive_timeout = 0x8D;
inline constexpr uint8_t session_taken_over = 0x8E;
inline constexpr uint8_t topic_filter_invalid = 0x8F;
inline constexpr uint8_t topic_name_invalid = 0x90;
inline constexpr uint8_t packet_identifier_in_use = 0x91;
inline constexpr uint8_t receive_maximum_exceeded = 0x93;
inline constexpr uint8_t topic_alias_invalid = 0x94;
inline constexpr uint8_t packet_too_large = 0x95;
inline constexpr uint8_t quota_exceeded = 0x97;
inline constexpr uint8_t administrative_action = 0x98;
inline constexpr uint8_t payload_format_invalid = 0x99;
inline constexpr uint8_t qos_not_supported = 0x9B;
inline constexpr uint8_t wildcard_subscriptions_not_supported = 0xA2;
}  // namespace reason

enum class Errc { ok = 0, malformed, protocol, too_large, unsupported_version, bad_utf8 };
const NamedCategory& mqtt_category();
// The MQTT 5 reason code for a codec error.
uint8_t reason_code(const Error& e);

struct Properties {
  std::optional<uint8_t> payload_format_indicator;
  std::optional<uint32_t> message_expiry_interval;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::vector<uint32_t> subscription_identifiers;
  std::optional<uint32_t> session_expiry_interval;
  std::optional<std::string> assigned_client_identifier;
  std::optional<uint16_t> server_keep_alive;
  std::optional<std::string> authentication_method;
  std::optional<std::string> authentication_data;
  std::optional<uint8_t> request_problem_information;
  std::optional<uint32_t> will_delay_interval;
  std::optional<uint8_t> request_response_information;
  std::optional<std::string> response_information;
  std::optional<std::string> server_reference;
  std::optional<std::string> reason_string;
  std::optional<uint16_t> receive_maximum;
  std::optional<uint16_t> topic_alias_maximum;
  std::optional<uint16_t> topic_alias;
  std::optional<uint8_t> maximum_qos;
  std::optional<uint8_t> retain_available;
  std::vector<std::pair<std::string, std::string>> user_properties;
  std::optional<uint32_t> maximum_packet_size;
  std::optional<uint8_t> wildcard_subscription_available;
  std::optional<uint8_t> subscription_identifier_available;
  std::optional<uint8_t> shared_subscription_available;
};

struct Will {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  Properties properties;
};

struct Connect {
  uint8_t version = 4;  // 3 = 3.1 (refused), 4 = 3.1.1, 5 = 5.0
  std::string client_id;
  bool clean_start = true;
  uint16_t keep_alive = 0;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<Will> will;
  Properties properties;
};
struct Connack {
  bool session_present = false;
  uint8_t code = 0;  // 3.1.1 return code or 5.0 reason code
  Properties properties;
};
struct Publish {
  uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::string topic;
  uint16_t packet_id = 0;
  Properties properties;
  std::string payload;
};
// PUBACK, PUBREC, PUBREL, PUBCOMP
struct Ack {
  PacketType type = PacketType::puback;
  uint16_t packet_id = 0;
  uint8_t reason = 0;
  Properties properties;
};
struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<std::pair<std::string, uint8_t>> filters;  // filter, options byte
  Properties properties;
};
struct Suback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> codes;
  Properties properties;
};
struct Unsubscribe {
  uint16_t packet_id = 0;
  std::vector<std::string> filters;
  Properties properties;
};
struct Unsuback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> codes;  // 5.0 only
  Properties properties;
};
struct Pingreq {};
struct Pingresp {};
struct Disconnect {
  uint8_t reason = 0;
  Properties properties;
};
struct Auth {
  uint8_t reason = 0;
  Properties properties;
};

using Packet = std::variant<Connect, Connack, Publish, Ack, Subscribe, Suback, Unsubscribe, Unsuback, Pingreq, Pingresp,
                            Disconnect, Auth>;

struct Decoded {
  Packet packet;
  size_t size = 0;  // bytes consumed
};

// Decodes one packet from the front of `buf`. Returns nullopt when more bytes are needed.
// `version` is 0 until CONNECT has been decoded (then only CONNECT is accepted).
Result<std::optional<Decoded>> decode(std::span<const char> buf, uint8_t version, uint32_t max_packet_size);

// Appends the encoding of `p` for protocol `version` to `out`.
void encode(const Packet& p, uint8_t version, std::string& out);

// Fast path for the server: PUBACK with success and no properties (same bytes in 3.1.1 and 5.0).
inline void encode_puback_success(uint16_t packet_id, std::string& out) {
  out.push_back(0x40);
  out.push_back(0x02);
  out.push_back(static_cast<char>(packet_id >> 8));
  out.push_back(static_cast<char>(packet_id & 0xff));
}

bool valid_utf8(std::string_view s);  // also refuses U+0000 as MQTT requires
// Topic filter matching with + and # wildcards.
bool topic_matches(std::string_view filter, std::string_view topic);
bool valid_topic_filter(std::string_view filter);

}  // namespace fieldline::transport::mqtt
