// TLS contexts for talking to the API.
#ifndef CARTESIA_TLS_HPP
#define CARTESIA_TLS_HPP

#include <boost/asio/ssl/context.hpp>

#include <string>

namespace cartesia {

/// A client TLS context: TLS 1.2 or later, `verify_peer`, and the system's
/// default trust store. Every operation of this library also verifies the host
/// name of the certificate against the URL's host; verification cannot be turned off.
///
/// Throws `boost::system::system_error` when OpenSSL cannot set it up.
boost::asio::ssl::context make_tls_context();

/// As above, and also trusts the CA certificates of the PEM file `ca_file`, e.g.
/// a corporate proxy's CA or a local test server's. Throws
/// `boost::system::system_error` when the file cannot be read or parsed.
boost::asio::ssl::context make_tls_context(const std::string& ca_file);

} // namespace cartesia

#endif
