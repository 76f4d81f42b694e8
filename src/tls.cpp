#include <cartesia/tls.hpp>

#include <openssl/ssl.h>

namespace cartesia {

boost::asio::ssl::context make_tls_context()
{
    namespace ssl = boost::asio::ssl;
    ssl::context tls(ssl::context::tls_client);
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION) != 1)
        throw boost::system::system_error(boost::asio::error::invalid_argument, "cannot require TLS 1.2");
    tls.set_verify_mode(ssl::verify_peer);
    tls.set_default_verify_paths();
    return tls;
}

boost::asio::ssl::context make_tls_context(const std::string& ca_file)
{
    auto tls = make_tls_context();
    tls.load_verify_file(ca_file); // throws system_error naming the OpenSSL failure
    return tls;
}

} // namespace cartesia
