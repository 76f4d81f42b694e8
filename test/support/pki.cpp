// make_pki(): a throw-away CA and a leaf certificate signed by it, made with OpenSSL 3.
#include "support/test_server.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace cartesia::test {
namespace {

template <auto free_function> struct openssl_deleter {
    template <typename T> void operator()(T* object) const noexcept { free_function(object); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY_free>>;
using certificate_ptr = std::unique_ptr<X509, openssl_deleter<X509_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, openssl_deleter<X509_EXTENSION_free>>;
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_deleter<BN_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO_free_all>>;

// Throws with OpenSSL's reason for the most recent failure unless `ok`.
void check(bool ok, const char* what)
{
    if (ok)
        return;
    char reason[256] = "no OpenSSL error queued";
    if (const unsigned long code = ERR_get_error())
        ERR_error_string_n(code, reason, sizeof reason);
    ERR_clear_error();
    throw std::runtime_error(std::string("make_pki: ") + what + ": " + reason);
}

key_ptr make_p256_key()
{
    key_ptr key(EVP_EC_gen("P-256"));
    check(key != nullptr, "generating a P-256 key");
    return key;
}

struct certificate_spec {
    const char* common_name;
    std::chrono::seconds not_before; // relative to now
    std::chrono::seconds not_after;
    // NID and value in OpenSSL's configuration syntax, added in this order: the
    // subjectKeyIdentifier must come before an authorityKeyIdentifier that refers to it.
    std::vector<std::pair<int, std::string>> extensions;
};

// A certificate for `subject_key` signed with `issuer_key`; self-signed when `issuer` is null.
certificate_ptr make_certificate(const certificate_spec& spec, EVP_PKEY* subject_key, X509* issuer,
                                 EVP_PKEY* issuer_key)
{
    certificate_ptr certificate(X509_new());
    check(certificate != nullptr, "allocating a certificate");
    X509* const cert = certificate.get();
    check(X509_set_version(cert, X509_VERSION_3) == 1, "setting the version");

    // 159 random bits: always positive, and within the 20 octets RFC 5280 allows.
    const bignum_ptr serial(BN_new());
    check(serial != nullptr && BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
              BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr,
          "making a serial number");

    check(X509_gmtime_adj(X509_getm_notBefore(cert), spec.not_before.count()) != nullptr &&
              X509_gmtime_adj(X509_getm_notAfter(cert), spec.not_after.count()) != nullptr,
          "setting the validity");

    const auto* common_name = reinterpret_cast<const unsigned char*>(spec.common_name);
    check(X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8, common_name, -1, -1, 0) == 1,
          "setting the subject");
    X509* const signer = issuer != nullptr ? issuer : cert;
    check(X509_set_issuer_name(cert, X509_get_subject_name(signer)) == 1, "setting the issuer");
    check(X509_set_pubkey(cert, subject_key) == 1, "setting the public key");

    X509V3_CTX context;
    X509V3_set_ctx(&context, signer, cert, nullptr, nullptr, 0);
    for (const auto& [nid, value] : spec.extensions) {
        const extension_ptr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str()));
        check(extension != nullptr && X509_add_ext(cert, extension.get(), -1) == 1,
              (std::string("adding ") + OBJ_nid2sn(nid) + " " + value).c_str());
    }

    check(X509_sign(cert, issuer_key, EVP_sha256()) > 0, "signing the certificate");
    return certificate;
}

// Runs a PEM_write_bio_* call against a memory BIO and returns what it wrote.
template <typename Write> std::string to_pem(Write write)
{
    const bio_ptr bio(BIO_new(BIO_s_mem()));
    check(bio != nullptr && write(bio.get()) == 1, "writing PEM");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return {data, static_cast<std::size_t>(size)};
}

} // namespace

pki make_pki(const pki_options& options)
{
    using namespace std::chrono_literals;

    std::string alt_names;
    for (const std::string& name : options.subject_alt_names) {
        alt_names += (alt_names.empty() ? "" : ",") + name;
    }

    // The CA's own validity is generous so that only the leaf's options decide expiry tests.
    const key_ptr ca_key = make_p256_key();
    const certificate_ptr ca = make_certificate({"cartesia-asio test CA",
                                                 -24h,
                                                 365 * 24h,
                                                 {{NID_basic_constraints, "critical,CA:TRUE"},
                                                  {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                                  {NID_subject_key_identifier, "hash"},
                                                  {NID_authority_key_identifier, "keyid:always"}}},
                                                ca_key.get(), nullptr, ca_key.get());

    const key_ptr leaf_key = make_p256_key();
    const certificate_ptr leaf = make_certificate({"localhost",
                                                   options.not_before,
                                                   options.not_after,
                                                   {{NID_basic_constraints, "critical,CA:FALSE"},
                                                    {NID_key_usage, "critical,digitalSignature"},
                                                    {NID_ext_key_usage, "serverAuth"},
                                                    {NID_subject_alt_name, alt_names},
                                                    {NID_subject_key_identifier, "hash"},
                                                    {NID_authority_key_identifier, "keyid:always"}}},
                                                  leaf_key.get(), ca.get(), ca_key.get());

    return {
        .ca_cert_pem = to_pem([&](BIO* bio) { return PEM_write_bio_X509(bio, ca.get()); }),
        .leaf_cert_pem = to_pem([&](BIO* bio) { return PEM_write_bio_X509(bio, leaf.get()); }),
        .leaf_key_pem = to_pem([&](BIO* bio) {
            return PEM_write_bio_PrivateKey(bio, leaf_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        }),
    };
}

} // namespace cartesia::test
