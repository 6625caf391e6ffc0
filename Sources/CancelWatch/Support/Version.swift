/// cancelwatch's version, sent as `User-Agent: cancelwatch/<version>`.
public enum CancelWatchVersion {
    public static let current = "0.1.0"
}
