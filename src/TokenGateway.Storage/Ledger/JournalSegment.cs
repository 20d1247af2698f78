using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace TokenGateway.Storage.Ledger;

/// <summary>
/// One append-only journal file (<c>{base}.{id}</c>): one JSON line per recorded event. Appends are plain
/// <c>pwrite</c> calls into the OS page cache (no fsync), so a line that was written survives the process being killed.
/// </summary>
/// <remarks>
/// <see cref="Appended"/> and the file are guarded by the ledger's append lock; <see cref="Committed"/> is written by
/// the single writer thread only.
/// </remarks>
internal sealed class JournalSegment
{
    private SafeFileHandle? _handle;
    private long _length;
    private long _committed;

    private JournalSegment(long id, string path, SafeFileHandle? handle, long appended, long length)
    {
        Id = id;
        FilePath = path;
        _handle = handle;
        Appended = appended;
        _length = length;
    }

    public long Id { get; }

    public string FilePath { get; }

    /// <summary>Lines in the file (guarded by the append lock).</summary>
    public long Appended { get; set; }

    /// <summary>Lines known to be committed to the store.</summary>
    public long Committed => Volatile.Read(ref _committed);

    /// <summary>True once the writer owns this segment for replay; queue entries pointing here are then redundant.</summary>
    public bool Replaying { get; set; }

    public long Length => _length;

    public bool IsOpen => _handle is not null;

    public static string PathFor(string basePath, long id) =>
        string.Create(CultureInfo.InvariantCulture, $"{basePath}.{id:D6}");

    /// <summary>Creates a new, empty segment open for appending.</summary>
    public static JournalSegment CreateNew(string basePath, long id)
    {
        var path = PathFor(basePath, id);
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete);
        return new JournalSegment(id, path, handle, 0, 0);
    }

    /// <summary>Finds segments left by an earlier process (closed; to be replayed), in id order.</summary>
    public static List<JournalSegment> FindExisting(string basePath)
    {
        var directory = Path.GetDirectoryName(basePath)!; // basePath is absolute (StorageOptions.JournalPath)
        var prefix = Path.GetFileName(basePath) + ".";
        var result = new List<JournalSegment>();
        if (!Directory.Exists(directory))
        {
            return result;
        }

        foreach (var path in Directory.EnumerateFiles(directory, prefix + "*"))
        {
            var suffix = Path.GetFileName(path)[prefix.Length..];
            if (suffix.Length == 0 || !suffix.All(char.IsAsciiDigit) || !long.TryParse(suffix, CultureInfo.InvariantCulture, out var id))
            {
                continue;
            }

            result.Add(new JournalSegment(id, path, null, CountLines(path), new FileInfo(path).Length));
        }

        result.Sort(static (a, b) => a.Id.CompareTo(b.Id));
        return result;
    }

    /// <summary>Appends bytes at the end of the file (caller holds the append lock).</summary>
    public void Append(ReadOnlySpan<byte> line)
    {
        var handle = _handle ?? throw new InvalidOperationException("Journal segment is closed.");
        RandomAccess.Write(handle, line, _length);
        _length += line.Length;
        Appended++;
    }

    /// <summary>Empties the file once everything in it is committed (caller holds the append lock).</summary>
    public void Truncate()
    {
        if (_handle is { } handle)
        {
            RandomAccess.SetLength(handle, 0);
        }

        _length = 0;
        Appended = 0;
        Volatile.Write(ref _committed, 0);
    }

    public void MarkCommitted(long count) => Volatile.Write(ref _committed, _committed + count);

    public void ResetCommitted() => Volatile.Write(ref _committed, 0);

    public void Close()
    {
        _handle?.Dispose();
        _handle = null;
    }

    public void Delete()
    {
        Close();
        File.Delete(FilePath);
    }

    private static long CountLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
        var buffer = new byte[64 * 1024];
        long lines = 0;
        var last = (byte)'\n';
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            lines += buffer.AsSpan(0, read).Count((byte)'\n');
            last = buffer[read - 1];
        }

        // A final line without its newline still counts (it may be complete JSON).
        return last == (byte)'\n' ? lines : lines + 1;
    }
}
