// cartesia-asio: an Asio client for Cartesia's access-token API. The umbrella header.
#ifndef CARTESIA_CARTESIA_HPP
#define CARTESIA_CARTESIA_HPP

#include <cartesia/client.hpp>
#include <cartesia/diagnostics.hpp>
#include <cartesia/error.hpp>
#include <cartesia/events.hpp>
#include <cartesia/generate_token.hpp>
#include <cartesia/tls.hpp>
#include <cartesia/token_reserve.hpp>
#include <cartesia/types.hpp>
#include <cartesia/version.hpp>

#endif
