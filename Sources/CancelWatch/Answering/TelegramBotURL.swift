import Foundation

/// A bot's Bot API address, read from a telegram sink's `url:`
/// (`https://api.telegram.org/bot<TOKEN>/sendMessage`): the same bot's other calls
/// (`getUpdates`, `editMessageText`, …) are its siblings. The URL holds the token: never print it.
public struct TelegramBotURL: Sendable, Hashable {
    /// Everything up to and including `/bot<TOKEN>/`.
    private let prefix: String
    /// The token as written in the path (for scrubbing it out of what is logged).
    let token: String

    /// Nil unless the URL's path ends in `/bot<TOKEN>/sendMessage` (no query, no fragment).
    public init?(sendMessageURL: String) {
        guard let components = URLComponents(string: sendMessageURL), components.query == nil, components.fragment == nil,
            components.host?.isEmpty == false
        else { return nil }
        let path = components.percentEncodedPath
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count >= 3, segments[segments.count - 1] == "sendMessage" else { return nil }
        let bot = segments[segments.count - 2]
        guard bot.hasPrefix("bot"), bot.count > 3 else { return nil }
        token = String(bot.dropFirst(3))
        guard let end = sendMessageURL.range(of: "/sendMessage", options: [.backwards, .anchored]) else { return nil }
        prefix = String(sendMessageURL[..<end.lowerBound]) + "/"
    }

    /// The URL of `method` (`getUpdates`, `answerCallbackQuery`, …).
    public func url(_ method: String) -> String { prefix + method }
}
