#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file that a user names (a policy file, an inventory file) without trusting what it
/// is: opened non-blocking (a FIFO must not wait for a writer), refused by type before any read
/// (a link to /dev/zero must not be read at all), and never read past a size limit.
public enum BoundedFile {
    /// Why a file was not read, as the end of a sentence that names it.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case missing, danglingLink, linkLoop, permissionDenied, directory, notRegular(String), tooLarge(limit: Int), system(String, Int32)

        public var description: String {
            switch self {
            case .missing: return "cannot be read: no such file"
            case .danglingLink: return "cannot be read: a symbolic link to nothing (dangling); remove it or fix its target"
            case .linkLoop: return "cannot be read: a loop of symbolic links"
            case .permissionDenied: return "cannot be read: permission denied"
            case .directory: return "is a directory, not a file"
            case .notRegular(let kind): return "is \(kind), not a regular file"
            case .tooLarge(let limit): return "the file is larger than \(limit >> 20) MiB (see docs/limits.md)"
            case .system(let call, let code): return "cannot be read: \(call): \(String(cString: strerror(code)))"
            }
        }
    }

    /// The bytes of the regular file at `path`, at most `limit` of them.
    public static func read(path: String, limit: Int) -> Result<[UInt8], Failure> {
        read(Array(path.utf8), relativeTo: AT_FDCWD, limit: limit)
    }

    /// The bytes of the regular file `name` (raw bytes: a name need not be UTF-8) in the
    /// directory open as `directoryFD`, at most `limit` of them.
    public static func read(_ name: [UInt8], relativeTo directoryFD: Int32, limit: Int) -> Result<[UInt8], Failure> {
        let fd = (name + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { openat(directoryFD, $0.baseAddress!, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY) }
        }
        guard fd >= 0 else {
            let code = errno
            switch code {
            case ENOENT:
                // Listed but not there: a symbolic link whose target is missing (or a race).
                var status = stat()
                let isLink = (name + [0]).withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) { fstatat(directoryFD, $0.baseAddress!, &status, AT_SYMLINK_NOFOLLOW) }
                } == 0 && status.st_mode & S_IFMT == S_IFLNK
                return .failure(isLink ? .danglingLink : .missing)
            case ELOOP: return .failure(.linkLoop)
            case EACCES, EPERM: return .failure(.permissionDenied)
            default: return .failure(.system("open", code))
            }
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return .failure(.system("fstat", errno)) }
        switch status.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return .failure(.directory)
        case S_IFIFO: return .failure(.notRegular("a FIFO (named pipe)"))
        case S_IFCHR: return .failure(.notRegular("a character device"))
        case S_IFBLK: return .failure(.notRegular("a block device"))
        case S_IFSOCK: return .failure(.notRegular("a socket"))
        default: return .failure(.notRegular("not a file"))
        }
        if Int(status.st_size) > limit { return .failure(.tooLarge(limit: limit)) }
        // Read to the end, one byte past the limit at most (a file may grow, or report size 0).
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while bytes.count <= limit {
            let wanted = min(chunk.count, limit + 1 - bytes.count)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EISDIR { return .failure(.directory) }
                return .failure(.system("read", errno))
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return bytes.count > limit ? .failure(.tooLarge(limit: limit)) : .success(bytes)
    }
}
