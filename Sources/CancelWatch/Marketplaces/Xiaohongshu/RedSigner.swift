import Foundation

/// Xiaohongshu Ark's request signature: every query parameter plus the `app-key`
/// and `timestamp` header values, sorted by key, joined as `key=value` with `&`,
/// prefixed with the path and `?`, the app secret appended, MD5 in lowercase hex.
/// Values are signed as they are, not percent-encoded.
public enum RedSigner {
    public static func stringToSign(path: String, query: [(String, String)], appKey: String, timestamp: String, appSecret: String)
        -> String
    {
        var parameters = query
        parameters.append(("app-key", appKey))
        parameters.append(("timestamp", timestamp))
        parameters.sort { $0.0 < $1.0 }
        return path + "?" + parameters.map { "\($0.0)=\($0.1)" }.joined(separator: "&") + appSecret
    }

    public static func sign(path: String, query: [(String, String)], appKey: String, timestamp: String, appSecret: String)
        -> String
    {
        Digest.md5Hex(stringToSign(path: path, query: query, appKey: appKey, timestamp: timestamp, appSecret: appSecret))
    }
}
