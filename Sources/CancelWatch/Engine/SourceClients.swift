import Foundation

extension SourceConfig {
    /// The marketplace client for this configured source.
    public func makeClient(transport: HTTPTransport, clock: WatchClock) -> MarketplaceClient {
        let base = baseURL.absoluteString.hasSuffix("/") ? String(baseURL.absoluteString.dropLast()) : baseURL.absoluteString
        switch credentials {
        case .ozon(let ozon):
            return OzonClient(
                account: OzonAccount(
                    source: name, baseURL: base, clientID: ozon.clientID, apiKey: ozon.apiKey.reveal(), timeout: timeout),
                transport: transport, clock: clock)
        case .red(let red):
            return RedClient(
                account: RedAccount(
                    source: name, baseURL: base, appKey: red.appKey, appSecret: red.appSecret.reveal(),
                    logistics: red.logistics, maxAuditTimeUnit: red.maxAuditTimeUnit, pageSize: red.pageSize,
                    timeout: timeout),
                transport: transport, clock: clock)
        }
    }
}

extension CancelWatchConfig {
    /// Every configured source with its client, ready for a ``Poller``.
    public func polledSources(transport: HTTPTransport, clock: WatchClock) -> [PolledSource] {
        sources.map { PolledSource(client: $0.makeClient(transport: transport, clock: clock), pollInterval: $0.pollInterval) }
    }
}
