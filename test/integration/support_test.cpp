// The test server's fault catalogue: every fault that fault_names() (and so --help) lists is
// one the server applies, and a name it does not list is answered with 404 unknown_fault.
#include <support/test_server.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdio>
#include <set>
#include <string>

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using cartesia::test::fault_names;
using cartesia::test::test_server;

// Enough to tell a 404 from any other answer; huge-body and endless-chunked send far more.
constexpr std::size_t enough_bytes = std::size_t{64} * 1024;

// The name of a request for `fault`, a family's placeholder replaced by a sample: a final
// status for <code>, a small number for the others (<ms>, <s>, <n>).
std::string sample_name(const std::string& fault)
{
    const auto placeholder = fault.find('<');
    if (placeholder == std::string::npos)
        return fault;
    return fault.substr(0, placeholder) + (fault.substr(placeholder) == "<code>" ? "503" : "1");
}

// What the server sends for a valid POST to /fault/<name>/access-token, up to enough_bytes.
// The request is followed by a TCP half-close, so that the faults which wait for the client
// (hang, slow-<ms>, the drips and streams) see it leave and end at once: each exchange ends
// without a timeout, while a 404 is written in full before the server reads again.
std::string exchange(const test_server& server, const std::string& name)
{
    asio::io_context io;
    ssl::context tls(ssl::context::tls_client);
    tls.add_certificate_authority(asio::buffer(server.ca_cert_pem()));
    tls.set_verify_mode(ssl::verify_peer);
    ssl::stream<tcp::socket> stream(io, tls);
    stream.next_layer().connect({asio::ip::address_v4::loopback(), server.port()});
    stream.handshake(ssl::stream_base::client);

    const std::string body = R"({"grants":{"tts":true}})";
    const std::string request = "POST /fault/" + name +
                                "/access-token HTTP/1.1\r\n"
                                "Host: localhost\r\n"
                                "Authorization: Bearer " +
                                server.api_key() +
                                "\r\n"
                                "Cartesia-Version: 2026-03-01\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
    asio::write(stream, asio::buffer(request));
    boost::system::error_code ignored; // the server may have ended the connection already, rudely
    stream.next_layer().shutdown(tcp::socket::shutdown_send, ignored);

    std::string received;
    std::array<char, 4096> chunk{};
    boost::system::error_code ended; // any end will do: close_notify, a drop, a reset
    while (!ended && received.size() < enough_bytes)
        received.append(chunk.data(), stream.read_some(asio::buffer(chunk), ended));
    return received;
}

bool is_unknown_fault(const std::string& received)
{
    return received.starts_with("HTTP/1.1 404 ") &&
           received.find(R"("error_code":"unknown_fault")") != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(fault_catalogue)

BOOST_AUTO_TEST_CASE(every_listed_fault_is_applied)
{
    const test_server server;
    BOOST_TEST(!fault_names().empty());
    for (const auto& fault : fault_names()) {
        const std::string name = sample_name(fault.name);
        BOOST_TEST_CONTEXT(name)
        {
            BOOST_TEST(!fault.effect.empty());
            BOOST_TEST(!is_unknown_fault(exchange(server, name)));
        }
    }
}

BOOST_AUTO_TEST_CASE(names_not_listed_are_unknown_faults)
{
    const test_server server;
    // A family's number must make up the rest of the name, and <code> be a final status.
    for (const std::string name : {"no-such-fault", "OK", "status-", "status-99", "status-600", "status-503x",
                                   "once-abc", "drip-", "drip--5", "slow-1ms", "retry-after-ms-"}) {
        BOOST_TEST_CONTEXT(name)
        {
            BOOST_TEST(is_unknown_fault(exchange(server, name)));
        }
    }
}

BOOST_AUTO_TEST_CASE(fault_names_are_unique)
{
    std::set<std::string> names;
    for (const auto& fault : fault_names())
        BOOST_TEST(names.insert(fault.name).second, fault.name << " is listed twice");
}

BOOST_AUTO_TEST_CASE(help_lists_every_fault)
{
    std::string help;
    FILE* pipe = ::popen(CARTESIA_TEST_SERVER_EXE " --help", "r");
    BOOST_REQUIRE(pipe);
    std::array<char, 4096> chunk{};
    while (const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), pipe))
        help.append(chunk.data(), n);
    BOOST_TEST(::pclose(pipe) == 0);
    for (const auto& fault : fault_names()) {
        BOOST_TEST_CONTEXT(fault.name)
        {
            BOOST_TEST(help.find("\n  " + fault.name + "  ") != std::string::npos);
            BOOST_TEST(help.find(fault.effect) != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
