import Foundation

/// A value that must never be shown: an API key, an app secret, a webhook secret or
/// URL, an SMTP password. Printing it, interpolating it, `dump`ing it or logging it
/// shows `<redacted>` (or a safe hint such as a webhook URL's scheme and host);
/// only ``value`` gives the real text, for the code that sends it.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable, ExpressibleByStringLiteral
{
    /// The secret text itself. Use it only to authenticate or sign; never log it.
    public let value: String
    /// What ``description`` shows instead of the value.
    public let redactedText: String

    /// The text shown in place of any secret.
    public static let placeholder = "<redacted>"

    /// Wraps `value`; `shownAs` is what printing it shows (by default `<redacted>`).
    public init(_ value: String, shownAs: String = Secret.placeholder) {
        self.value = value
        self.redactedText = shownAs
    }

    public init(stringLiteral value: String) {
        self.init(value)
    }

    /// The secret text (the same as ``value``), named so that its uses stand out.
    public func reveal() -> String { value }

    public var description: String { redactedText }
    public var debugDescription: String { "Secret(\(redactedText))" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    public static func == (a: Secret, b: Secret) -> Bool { a.value == b.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }

    /// A URL whose path, query and user info may carry a token (Telegram's
    /// `/bot<token>/`, Slack's `/services/…`), shown as its scheme and host only.
    public static func url(_ text: String) -> Secret {
        Secret(text, shownAs: redactedURL(text))
    }

    /// `https://hooks.example.com/<redacted>` for `https://user:pw@hooks.example.com/x?y`.
    static func redactedURL(_ text: String) -> String {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            let host = components.host, !host.isEmpty
        else { return placeholder }
        var shown = "\(scheme)://\(host)"
        if let port = components.port { shown += ":\(port)" }
        let path = components.percentEncodedPath
        if (!path.isEmpty && path != "/") || components.percentEncodedQuery != nil
            || components.user != nil || components.fragment != nil
        {
            shown += "/" + placeholder
        }
        return shown
    }
}
