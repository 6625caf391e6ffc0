import CCrypto
import Foundation

/// Hashes and MACs through the system's libcrypto (already linked by libcurl).
public enum Digest {
    /// Lowercase hex MD5 (Xiaohongshu's request signature).
    public static func md5Hex(_ text: String) -> String {
        hex(digest(Data(text.utf8), EVP_md5(), length: 16))
    }

    public static func sha256(_ data: Data) -> Data {
        digest(data, EVP_sha256(), length: 32)
    }

    /// HMAC-SHA256 of `message` under `key`. Should libcrypto fail, random bytes: a check
    /// against them fails, where zeros would be a MAC anyone could write.
    public static func hmacSHA256(key: Data, message: Data) -> Data {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        let made = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                HMAC(
                    EVP_sha256(), k.baseAddress, Int32(clamping: k.count),
                    m.bindMemory(to: UInt8.self).baseAddress, m.count, &out, &length)
            }
        }
        guard made != nil, length == 32 else { return Data((0..<32).map { _ in UInt8.random(in: 0...255) }) }
        return Data(out)
    }

    public static func hex(_ data: Data) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(data.count * 2)
        for byte in data {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func digest(_ data: Data, _ md: OpaquePointer?, length: Int) -> Data {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var size: UInt32 = 0
        data.withUnsafeBytes { d in
            _ = EVP_Digest(d.baseAddress, d.count, &out, &size, md, nil)
        }
        return Data(out.prefix(Int(size)))
    }
}
