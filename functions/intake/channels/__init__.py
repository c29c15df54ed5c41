"""One adapter per provider: verify the request, parse it, map it to `InboundMessage`s."""
