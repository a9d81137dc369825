#include "fieldline/transport/mqtt/codec.h"

#include <cstring>

namespace fieldline::transport::mqtt {
namespace {

class MqttCategory final : public NamedCategory {
 public:
  const char* name() const noexcept override { return "mqtt"; }
  const char* code_name(int c) const noexcept override {
    switch (static_cast<Errc>(c)) {
      case Errc::ok: return "ok";
      case Errc::malformed: return "malformed_packet";
      case Errc::protocol: return "protocol_error";
      case Errc::too_large: return "packet_too_large";
      case Errc::unsupported_version: return "unsupported_protocol_version";
      case Errc::bad_utf8: return "invalid_utf8";
    }
    return "unknown";
  }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::ok: return "ok";
      case Errc::malformed: return "malformed packet";
      case Errc::protocol: return "protocol error";
      case Errc::too_large: return "packet too large";
      case Errc::unsupported_version: return "unsupported protocol version";
      case Errc::bad_utf8: return "invalid UTF-8";
    }
    return "unknown MQTT error";
  }
};

Error err(Errc e, std::string ctx) { return Error(std::error_code(static_cast<int>(e), mqtt_category()), std::move(ctx)); }

class Reader {
 public:
  Reader(const char* p, size_t n) : p_(reinterpret_cast<const uint8_t*>(p)), n_(n) {}
  size_t left() const { return n_ - pos_; }
  bool u8(uint8_t& v) {
    if (left() < 1) return false;
    v = p_[pos_++];
    return true;
  }
  bool u16(uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<uint16_t>(p_[pos_] << 8 | p_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    if (left() < 4) return false;
    v = static_cast<uint32_t>(p_[pos_]) << 24 | static_cast<uint32_t>(p_[pos_ + 1]) << 16 |
        static_cast<uint32_t>(p_[pos_ + 2]) << 8 | p_[pos_ + 3];
    pos_ += 4;
    return true;
  }
  bool varint(uint32_t& v) {
    v = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b;
      if (!u8(b)) return false;
      v |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool binary(std::string& out) {
    uint16_t n;
    if (!u16(n) || left() < n) return false;
    out.assign(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return true;
  }
  bool rest(std::string& out) {
    out.assign(reinterpret_cast<const char*>(p_ + pos_), left());
    pos_ = n_;
    return true;
  }
  Reader sub(size_t n) {
    Reader r(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return r;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

Status utf8(Reader& r, std::string& out, const char* what) {
  if (!r.binary(out)) return err(Errc::malformed, std::string("truncated ") + what);
  if (!valid_utf8(out)) return err(Errc::bad_utf8, std::string(what) + " is not valid UTF-8");
  return {};
}

Status decode_properties(Reader& r, Properties& p) {
  uint32_t len;
  if (!r.varint(len) || r.left() < len) return err(Errc::malformed, "truncated properties");
  Reader pr = r.sub(len);
  uint64_t seen = 0;
  while (pr.left() > 0) {
    uint32_t id;
    if (!pr.varint(id)) return err(Errc::malformed, "bad property identifier");
    if (id != 0x26 && id != 0x0B && id < 64) {
      if (seen & (uint64_t{1} << id)) return err(Errc::protocol, "property " + std::to_string(id) + " given twice");
      seen |= uint64_t{1} << id;
    }
    auto byte = [&](std::optional<uint8_t>& f) {
      uint8_t v;
      if (!pr.u8(v)) return false;
      f = v;
      return true;
    };
    auto u16 = [&](std::optional<uint16_t>& f) {
      uint16_t v;
      if (!pr.u16(v)) return false;
      f = v;
      return true;
    };
    auto u32 = [&](std::optional<uint32_t>& f) {
      uint32_t v;
      if (!pr.u32(v)) return false;
      f = v;
      return true;
    };
    auto str = [&](std::optional<std::string>& f, bool check) {
      std::string v;
      if (!pr.binary(v)) return false;
      if (check && !valid_utf8(v)) return false;
      f = std::move(v);
      return true;
    };
    bool good = true;
    switch (id) {
      case 0x01: good = byte(p.payload_format_indicator); break;
      case 0x02: good = u32(p.message_expiry_interval); break;
      case 0x03: good = str(p.content_type, true); break;
      case 0x08: good = str(p.response_topic, true); break;
      case 0x09: good = str(p.correlation_data, false); break;
      case 0x0B: {
        uint32_t v;
        good = pr.varint(v) && v != 0;
        if (good) p.subscription_identifiers.push_back(v);
        break;
      }
      case 0x11: good = u32(p.session_expiry_interval); break;
      case 0x12: good = str(p.assigned_client_identifier, true); break;
      case 0x13: good = u16(p.server_keep_alive); break;
      case 0x15: good = str(p.authentication_method, true); break;
      case 0x16: good = str(p.authentication_data, false); break;
      case 0x17: good = byte(p.request_problem_information); break;
      case 0x18: good = u32(p.will_delay_interval); break;
      case 0x19: good = byte(p.request_response_information); break;
      case 0x1A: good = str(p.response_information, true); break;
      case 0x1C: good = str(p.server_reference, true); break;
      case 0x1F: good = str(p.reason_string, true); break;
      case 0x21: good = u16(p.receive_maximum) && *p.receive_maximum != 0; break;
      case 0x22: good = u16(p.topic_alias_maximum); break;
      case 0x23: good = u16(p.topic_alias); break;
      case 0x24: good = byte(p.maximum_qos); break;
      case 0x25: good = byte(p.retain_available); break;
      case 0x26: {
        std::string k, v;
        good = pr.binary(k) && pr.binary(v) && valid_utf8(k) && valid_utf8(v);
        if (good) p.user_properties.emplace_back(std::move(k), std::move(v));
        break;
      }
      case 0x27: good = u32(p.maximum_packet_size) && *p.maximum_packet_size != 0; break;
      case 0x28: good = byte(p.wildcard_subscription_available); break;
      case 0x29: good = byte(p.subscription_identifier_available); break;
      case 0x2A: good = byte(p.shared_subscription_available); break;
      default: return err(Errc::malformed, "unknown property " + std::to_string(id));
    }
    if (!good) return err(Errc::malformed, "bad value for property " + std::to_string(id));
  }
  return {};
}

Result<Packet> decode_body(uint8_t type, uint8_t flags, Reader r, uint8_t version) {
  const bool v5 = version == 5;
  auto need_flags = [&](uint8_t expected) -> Status {
    if (flags != expected) return err(Errc::malformed, "reserved flags set");
    return {};
  };
  switch (static_cast<PacketType>(type)) {
    case PacketType::connect: {
      FL_TRY_STATUS(need_flags(0));
      Connect c;
      std::string proto;
      uint8_t level, cflags;
      if (!r.binary(proto) || !r.u8(level)) return err(Errc::malformed, "truncated CONNECT header");
      if (proto != "MQTT" && proto != "MQIsdp") return err(Errc::protocol, "protocol name '" + proto + "' is not MQTT");
      c.version = level;
      if (level != 4 && level != 5) return err(Errc::unsupported_version, "protocol level " + std::to_string(level));
      if (!r.u8(cflags) || !r.u16(c.keep_alive)) return err(Errc::malformed, "truncated CONNECT header");
      if (cflags & 0x01) return err(Errc::malformed, "reserved CONNECT flag set");
      c.clean_start = cflags & 0x02;
      bool will = cflags & 0x04;
      uint8_t will_qos = (cflags >> 3) & 3;
      bool will_retain = cflags & 0x20;
      bool has_password = cflags & 0x40, has_user = cflags & 0x80;
      if (!will && (will_qos || will_retain)) return err(Errc::malformed, "will flags without a will");
      if (will_qos == 3) return err(Errc::malformed, "will QoS 3");
      if (level == 4 && has_password && !has_user) return err(Errc::malformed, "password without user name");
      if (level == 5) FL_TRY_STATUS(decode_properties(r, c.properties));
      FL_TRY_STATUS(utf8(r, c.client_id, "client identifier"));
      if (will) {
        Will w;
        w.qos = will_qos;
        w.retain = will_retain;
        if (level == 5) FL_TRY_STATUS(decode_properties(r, w.properties));
        FL_TRY_STATUS(utf8(r, w.topic, "will topic"));
        if (!r.binary(w.payload)) return err(Errc::malformed, "truncated will payload");
        c.will = std::move(w);
      }
      if (has_user) {
        std::string u;
        FL_TRY_STATUS(utf8(r, u, "user name"));
        c.username = std::move(u);
      }
      if (has_password) {
        std::string pw;
        if (!r.binary(pw)) return err(Errc::malformed, "truncated password");
        c.password = std::move(pw);
      }
      if (r.left() != 0) return err(Errc::malformed, "trailing bytes after CONNECT");
      return Packet(std::move(c));
    }
    case PacketType::connack: {
      Connack c;
      uint8_t ack;
      if (!r.u8(ack) || !r.u8(c.code)) return err(Errc::malformed, "truncated CONNACK");
      c.session_present = ack & 1;
      if (v5 && r.left() > 0) FL_TRY_STATUS(decode_properties(r, c.properties));
      return Packet(std::move(c));
    }
    case PacketType::publish: {
      Publish p;
      p.qos = (flags >> 1) & 3;
      p.dup = flags & 8;
      p.retain = flags & 1;
      if (p.qos == 3) return err(Errc::malformed, "PUBLISH with QoS 3");
      if (p.qos == 0 && p.dup) return err(Errc::malformed, "DUP flag on a QoS 0 PUBLISH");
      FL_TRY_STATUS(utf8(r, p.topic, "topic name"));
      if (p.topic.find_first_of("+#") != std::string::npos) return err(Errc::protocol, "wildcard in a PUBLISH topic");
      if (p.qos > 0) {
        if (!r.u16(p.packet_id)) return err(Errc::malformed, "truncated packet identifier");
        if (p.packet_id == 0) return err(Errc::malformed, "packet identifier 0");
      }
      if (v5) FL_TRY_STATUS(decode_properties(r, p.properties));
      r.rest(p.payload);
      return Packet(std::move(p));
    }
    case PacketType::puback:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp: {
      FL_TRY_STATUS(need_flags(static_cast<PacketType>(type) == PacketType::pubrel ? 2 : 0));
      Ack a;
      a.type = static_cast<PacketType>(type);
      if (!r.u16(a.packet_id)) return err(Errc::malformed, "truncated acknowledgement");
      if (v5 && r.left() > 0) {
        r.u8(a.reason);
        if (r.left() > 0) FL_TRY_STATUS(decode_properties(r, a.properties));
      }
      if (r.left() != 0) return err(Errc::malformed, "trailing bytes after acknowledgement");
      return Packet(std::move(a));
    }
    case PacketType::subscribe: {
      FL_TRY_STATUS(need_flags(2));
      Subscribe s;
      if (!r.u16(s.packet_id) || s.packet_id == 0) return err(Errc::malformed, "bad packet identifier");
      if (v5) FL_TRY_STATUS(decode_properties(r, s.properties));
      while (r.left() > 0) {
        std::string f;
        uint8_t opts;
        FL_TRY_STATUS(utf8(r, f, "topic filter"));
        if (!r.u8(opts)) return err(Errc::malformed, "truncated subscription options");
        if ((opts & 3) == 3 || (v5 ? (opts & 0xC0) : (opts & 0xFC)) || ((opts >> 4) & 3) == 3) {
          return err(Errc::malformed, "bad subscription options");
        }
        s.filters.emplace_back(std::move(f), opts);
      }
      if (s.filters.empty()) return err(Errc::protocol, "SUBSCRIBE without topic filters");
      return Packet(std::move(s));
    }
    case PacketType::suback: {
      Suback s;
      if (!r.u16(s.packet_id)) return err(Errc::malformed, "truncated SUBACK");
      if (v5) FL_TRY_STATUS(decode_properties(r, s.properties));
      uint8_t c;
      while (r.u8(c)) s.codes.push_back(c);
      return Packet(std::move(s));
    }
    case PacketType::unsubscribe: {
      FL_TRY_STATUS(need_flags(2));
      Unsubscribe u;
      if (!r.u16(u.packet_id) || u.packet_id == 0) return err(Errc::malformed, "bad packet identifier");
      if (v5) FL_TRY_STATUS(decode_properties(r, u.properties));
      while (r.left() > 0) {
        std::string f;
        FL_TRY_STATUS(utf8(r, f, "topic filter"));
        u.filters.push_back(std::move(f));
      }
      if (u.filters.empty()) return err(Errc::protocol, "UNSUBSCRIBE without topic filters");
      return Packet(std::move(u));
    }
    case PacketType::unsuback: {
      Unsuback u;
      if (!r.u16(u.packet_id)) return err(Errc::malformed, "truncated UNSUBACK");
      if (v5) {
        FL_TRY_STATUS(decode_properties(r, u.properties));
        uint8_t c;
        while (r.u8(c)) u.codes.push_back(c);
      }
      return Packet(std::move(u));
    }
    case PacketType::pingreq:
      FL_TRY_STATUS(need_flags(0));
      if (r.left()) return err(Errc::malformed, "PINGREQ with a body");
      return Packet(Pingreq{});
    case PacketType::pingresp:
      return Packet(Pingresp{});
    case PacketType::disconnect: {
      FL_TRY_STATUS(need_flags(0));
      Disconnect d;
      if (v5 && r.left() > 0) {
        r.u8(d.reason);
        if (r.left() > 0) FL_TRY_STATUS(decode_properties(r, d.properties));
      }
      if (r.left()) return err(Errc::malformed, "trailing bytes after DISCONNECT");
      return Packet(std::move(d));
    }
    case PacketType::auth: {
      if (!v5) return err(Errc::protocol, "AUTH requires MQTT 5");
      Auth a;
      if (r.left() > 0) {
        r.u8(a.reason);
        if (r.left() > 0) FL_TRY_STATUS(decode_properties(r, a.properties));
      }
      return Packet(std::move(a));
    }
  }
  return err(Errc::malformed, "packet type " + std::to_string(type) + " is reserved");
}

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
void put_u32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
void put_varint(std::string& out, uint32_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (v);
}
void put_str(std::string& out, std::string_view s) {
  put_u16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}

void encode_properties(const Properties& p, std::string& out) {
  std::string b;
  auto byte = [&](uint8_t id, const std::optional<uint8_t>& v) { if (v) { b.push_back(static_cast<char>(id)); b.push_back(static_cast<char>(*v)); } };
  auto u16 = [&](uint8_t id, const std::optional<uint16_t>& v) { if (v) { b.push_back(static_cast<char>(id)); put_u16(b, *v); } };
  auto u32 = [&](uint8_t id, const std::optional<uint32_t>& v) { if (v) { b.push_back(static_cast<char>(id)); put_u32(b, *v); } };
  auto str = [&](uint8_t id, const std::optional<std::string>& v) { if (v) { b.push_back(static_cast<char>(id)); put_str(b, *v); } };
  byte(0x01, p.payload_format_indicator);
  u32(0x02, p.message_expiry_interval);
  str(0x03, p.content_type);
  str(0x08, p.response_topic);
  str(0x09, p.correlation_data);
  for (uint32_t id : p.subscription_identifiers) {
    b.push_back(0x0B);
    put_varint(b, id);
  }
  u32(0x11, p.session_expiry_interval);
  str(0x12, p.assigned_client_identifier);
  u16(0x13, p.server_keep_alive);
  str(0x15, p.authentication_method);
  str(0x16, p.authentication_data);
  byte(0x17, p.request_problem_information);
  u32(0x18, p.will_delay_interval);
  byte(0x19, p.request_response_information);
  str(0x1A, p.response_information);
  str(0x1C, p.server_reference);
  str(0x1F, p.reason_string);
  u16(0x21, p.receive_maximum);
  u16(0x22, p.topic_alias_maximum);
  u16(0x23, p.topic_alias);
  byte(0x24, p.maximum_qos);
  byte(0x25, p.retain_available);
  for (const auto& [k, v] : p.user_properties) {
    b.push_back(0x26);
    put_str(b, k);
    put_str(b, v);
  }
  u32(0x27, p.maximum_packet_size);
  byte(0x28, p.wildcard_subscription_available);
  byte(0x29, p.subscription_identifier_available);
  byte(0x2A, p.shared_subscription_available);
  put_varint(out, static_cast<uint32_t>(b.size()));
  out += b;
}

void frame(uint8_t first, const std::string& body, std::string& out) {
  out.push_back(static_cast<char>(first));
  put_varint(out, static_cast<uint32_t>(body.size()));
  out += body;
}

}  // namespace

const NamedCategory& mqtt_category() {
  static const MqttCategory c;
  return c;
}

uint8_t reason_code(const Error& e) {
  if (e.code().category() != mqtt_category()) return reason::unspecified_error;
  switch (static_cast<Errc>(e.code().value())) {
    case Errc::malformed: return reason::malformed_packet;
    case Errc::protocol: return reason::protocol_error;
    case Errc::too_large: return reason::packet_too_large;
    case Errc::unsupported_version: return reason::unsupported_protocol_version;
    case Errc::bad_utf8: return reason::malformed_packet;
    case Errc::ok: return reason::success;
  }
  return reason::unspecified_error;
}

Result<std::optional<Decoded>> decode(std::span<const char> buf, uint8_t version, uint32_t max_packet_size) {
  if (buf.size() < 2) return std::optional<Decoded>();
  auto first = static_cast<uint8_t>(buf[0]);
  uint32_t remaining = 0;
  size_t i = 1;
  for (int shift = 0;; shift += 7) {
    if (i >= buf.size()) return std::optional<Decoded>();
    auto b = static_cast<uint8_t>(buf[i++]);
    remaining |= static_cast<uint32_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
    if (shift >= 21) return err(Errc::malformed, "remaining length longer than 4 bytes");
  }
  uint8_t type = first >> 4;
  if (version == 0 && type != static_cast<uint8_t>(PacketType::connect)) {
    return err(Errc::protocol, "first packet is not CONNECT");
  }
  if (version != 0 && type == static_cast<uint8_t>(PacketType::connect)) return err(Errc::protocol, "second CONNECT");
  if (type == 0) return err(Errc::malformed, "packet type 0 is reserved");
  uint64_t total = i + static_cast<uint64_t>(remaining);
  if (max_packet_size != 0 && total > max_packet_size) {
    return err(Errc::too_large, std::to_string(total) + " bytes exceed the maximum packet size of " + std::to_string(max_packet_size));
  }
  if (buf.size() < total) return std::optional<Decoded>();
  Reader body(buf.data() + i, remaining);
  uint8_t effective = version;
  if (version == 0 && remaining >= 7) {
    // CONNECT decides the version itself; decode_body reads the level.
    effective = static_cast<uint8_t>(buf[i + 6]);
  }
  FL_TRY(packet, decode_body(type, first & 0x0f, body, effective));
  return std::optional<Decoded>(Decoded{std::move(packet), static_cast<size_t>(total)});
}

void encode(const Packet& packet, uint8_t version, std::string& out) {
  const bool v5 = version == 5;
  std::string b;
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, Connect>) {
          put_str(b, "MQTT");
          b.push_back(static_cast<char>(p.version));
          uint8_t f = (p.clean_start ? 2 : 0) | (p.will ? 4 | (p.will->qos << 3) | (p.will->retain ? 0x20 : 0) : 0) |
                      (p.password ? 0x40 : 0) | (p.username ? 0x80 : 0);
          b.push_back(static_cast<char>(f));
          put_u16(b, p.keep_alive);
          if (p.version == 5) encode_properties(p.properties, b);
          put_str(b, p.client_id);
          if (p.will) {
            if (p.version == 5) encode_properties(p.will->properties, b);
            put_str(b, p.will->topic);
            put_str(b, p.will->payload);
          }
          if (p.username) put_str(b, *p.username);
          if (p.password) put_str(b, *p.password);
          frame(0x10, b, out);
        } else if constexpr (std::is_same_v<T, Connack>) {
          b.push_back(p.session_present ? 1 : 0);
          b.push_back(static_cast<char>(p.code));
          if (v5) encode_properties(p.properties, b);
          frame(0x20, b, out);
        } else if constexpr (std::is_same_v<T, Publish>) {
          put_str(b, p.topic);
          if (p.qos > 0) put_u16(b, p.packet_id);
          if (v5) encode_properties(p.properties, b);
          b += p.payload;
          frame(static_cast<uint8_t>(0x30 | (p.dup ? 8 : 0) | (p.qos << 1) | (p.retain ? 1 : 0)), b, out);
        } else if constexpr (std::is_same_v<T, Ack>) {
          put_u16(b, p.packet_id);
          bool props = v5 && (p.properties.reason_string || !p.properties.user_properties.empty());
          if (v5 && (p.reason != 0 || props)) b.push_back(static_cast<char>(p.reason));
          if (props) encode_properties(p.properties, b);
          frame(static_cast<uint8_t>(static_cast<uint8_t>(p.type) << 4 | (p.type == PacketType::pubrel ? 2 : 0)), b, out);
        } else if constexpr (std::is_same_v<T, Subscribe>) {
          put_u16(b, p.packet_id);
          if (v5) encode_properties(p.properties, b);
          for (const auto& [f, o] : p.filters) {
            put_str(b, f);
            b.push_back(static_cast<char>(o));
          }
          frame(0x82, b, out);
        } else if constexpr (std::is_same_v<T, Suback>) {
          put_u16(b, p.packet_id);
          if (v5) encode_properties(p.properties, b);
          for (uint8_t c : p.codes) b.push_back(static_cast<char>(c));
          frame(0x90, b, out);
        } else if constexpr (std::is_same_v<T, Unsubscribe>) {
          put_u16(b, p.packet_id);
          if (v5) encode_properties(p.properties, b);
          for (const auto& f : p.filters) put_str(b, f);
          frame(0xA2, b, out);
        } else if constexpr (std::is_same_v<T, Unsuback>) {
          put_u16(b, p.packet_id);
          if (v5) {
            encode_properties(p.properties, b);
            for (uint8_t c : p.codes) b.push_back(static_cast<char>(c));
          }
          frame(0xB0, b, out);
        } else if constexpr (std::is_same_v<T, Pingreq>) {
          frame(0xC0, b, out);
        } else if constexpr (std::is_same_v<T, Pingresp>) {
          frame(0xD0, b, out);
        } else if constexpr (std::is_same_v<T, Disconnect>) {
          if (v5) {
            b.push_back(static_cast<char>(p.reason));
            encode_properties(p.properties, b);
          }
          frame(0xE0, b, out);
        } else if constexpr (std::is_same_v<T, Auth>) {
          b.push_back(static_cast<char>(p.reason));
          encode_properties(p.properties, b);
          frame(0xF0, b, out);
        }
      },
      packet);
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + static_cast<size_t>(n) >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      auto cc = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;  // overlong
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

bool valid_topic_filter(std::string_view f) {
  if (f.empty()) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == '+') {
      if ((i > 0 && f[i - 1] != '/') || (i + 1 < f.size() && f[i + 1] != '/')) return false;
    } else if (f[i] == '#') {
      if (i + 1 != f.size() || (i > 0 && f[i - 1] != '/')) return false;
    }
  }
  return true;
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  size_t fi = 0, ti = 0;
  while (fi < filter.size()) {
    size_t fend = filter.find('/', fi);
    std::string_view flevel = filter.substr(fi, fend == std::string_view::npos ? std::string_view::npos : fend - fi);
    if (flevel == "#") return true;
    if (ti > topic.size()) return false;
    size_t tend = topic.find('/', ti);
    std::string_view tlevel = topic.substr(ti, tend == std::string_view::npos ? std::string_view::npos : tend - ti);
    if (flevel != "+" && flevel != tlevel) return false;
    if (fend == std::string_view::npos) return tend == std::string_view::npos;
    if (tend == std::string_view::npos) {
      // filter continues; only "x/#" may match "x"
      return filter.substr(fend + 1) == "#";
    }
    fi = fend + 1;
    ti = tend + 1;
  }
  return false;
}

}  // namespace fieldline::transport::mqtt
