using System.Globalization;
using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace TokenGateway.Storage.Ledger;

/// <summary>
/// One append-only journal file (<c>{base}.{id}</c>): one JSON line per recorded event. The active segment is a
/// pre-sized (allocated up front), memory-mapped file: an append copies the line into the shared mapping, which is the
/// OS page cache, so a line that was appended survives the process being killed (no fsync, as with <c>pwrite</c>)
/// and an append costs no system call.
/// </summary>
/// <remarks>
/// <para>
/// The unwritten tail of an active segment is zero bytes. Sealing a segment cuts the file to the bytes written, so a
/// sealed segment has the same format as the segments written with <c>pwrite</c> before. Readers (replay and
/// <see cref="CountLines"/>) treat both <c>'\n'</c> and zero bytes as line ends: a segment left by a killed process
/// (complete lines, maybe one torn line, then zeros) and an older file without zeros read the same way. Valid JSON
/// never holds a raw zero byte (U+0000 is escaped), so no line is split by it.
/// </para>
/// <para>
/// <see cref="Appended"/> and the mapping are guarded by the ledger's append lock; <see cref="Committed"/> is written by
/// the single writer thread only.
/// </para>
/// </remarks>
internal sealed unsafe class JournalSegment
{
    private SafeFileHandle? _handle;
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;
    private long _capacity;
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

    /// <summary>Bytes written (for an active segment; not its pre-sized file length).</summary>
    public long Length => _length;

    /// <summary>Bytes the mapping holds; an append that does not fit needs a new segment.</summary>
    public long Capacity => _capacity;

    public bool IsOpen => _handle is not null;

    public static string PathFor(string basePath, long id) =>
        string.Create(CultureInfo.InvariantCulture, $"{basePath}.{id:D6}");

    /// <summary>
    /// Creates a new segment of <paramref name="capacity"/> bytes, allocated on disk up front (so a full disk fails
    /// here, with an <see cref="IOException"/>, rather than when a page of the mapping is first written) and mapped.
    /// </summary>
    public static JournalSegment CreateNew(string basePath, long id, long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var path = PathFor(basePath, id);
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete, FileOptions.None, capacity);
        var segment = new JournalSegment(id, path, handle, 0, 0);
        try
        {
            RandomAccess.SetLength(handle, capacity); // the preallocation keeps the length at 0; the mapping needs it
            segment.Map(capacity);
            return segment;
        }
        catch
        {
            segment.Delete();
            throw;
        }
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

    /// <summary>True when <paramref name="bytes"/> more fit in the mapping.</summary>
    public bool HasRoom(int bytes) => _capacity - _length >= bytes;

    /// <summary>Copies the line into the mapping after the last one (caller holds the append lock and checked <see cref="HasRoom"/>).</summary>
    public void Append(ReadOnlySpan<byte> line)
    {
        if (_base is null)
        {
            throw new InvalidOperationException("Journal segment is closed.");
        }

        if (!HasRoom(line.Length))
        {
            throw new InvalidOperationException("The line does not fit in the journal segment; the ledger rotates first.");
        }

        line.CopyTo(new Span<byte>(_base + _length, line.Length));
        _length += line.Length;
        Appended++;
    }

    /// <summary>
    /// Zeroes the written bytes once everything in them is committed, so the segment is reused from its start (caller
    /// holds the append lock). A process killed meanwhile leaves committed lines only, which a replay skips.
    /// </summary>
    public void Truncate()
    {
        if (_base is not null)
        {
            for (var offset = 0L; offset < _length; offset += int.MaxValue)
            {
                new Span<byte>(_base + offset, (int)Math.Min(int.MaxValue, _length - offset)).Clear();
            }
        }

        _length = 0;
        Appended = 0;
        Volatile.Write(ref _committed, 0);
    }

    public void MarkCommitted(long count) => Volatile.Write(ref _committed, _committed + count);

    public void ResetCommitted() => Volatile.Write(ref _committed, 0);

    /// <summary>Closes the file after cutting it to the bytes written, so it has no zero tail (caller holds the append lock).</summary>
    public void Seal()
    {
        Unmap();
        if (_handle is { } handle)
        {
            try
            {
                RandomAccess.SetLength(handle, _length);
            }
            catch (IOException)
            {
                // Cosmetic: readers skip a zero tail.
            }
        }

        Close();
    }

    /// <summary>Closes the mapping and the file as they are (a pre-sized active segment keeps its zero tail).</summary>
    public void Close()
    {
        Unmap();
        _handle?.Dispose();
        _handle = null;
    }

    public void Delete()
    {
        Close();
        File.Delete(FilePath);
    }

    /// <summary>
    /// Splits journal bytes into lines: a line ends at <c>'\n'</c> or at a zero byte (the unwritten tail of a pre-sized
    /// segment); runs of separators yield nothing. The last line may lack its end (torn by a crash).
    /// </summary>
    public static bool TryReadLine(ref ReadOnlyMemory<byte> remaining, out ReadOnlyMemory<byte> line)
    {
        var span = remaining.Span;
        var start = span.IndexOfAnyExcept((byte)'\n', (byte)0);
        if (start < 0)
        {
            remaining = ReadOnlyMemory<byte>.Empty;
            line = default;
            return false;
        }

        var end = span[start..].IndexOfAny((byte)'\n', (byte)0);
        line = end < 0 ? remaining[start..] : remaining.Slice(start, end);
        remaining = end < 0 ? ReadOnlyMemory<byte>.Empty : remaining[(start + end + 1)..];
        return true;
    }

    private void Map(long capacity)
    {
        _map = MemoryMappedFile.CreateFromFile(_handle!, mapName: null, capacity, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: true);
        _view = _map.CreateViewAccessor(0, capacity, MemoryMappedFileAccess.ReadWrite);
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + _view.PointerOffset;
        _capacity = capacity;
    }

    private void Unmap()
    {
        if (_view is not null)
        {
            if (_base is not null)
            {
                _view.SafeMemoryMappedViewHandle.ReleasePointer();
            }

            _view.Dispose();
        }

        _map?.Dispose();
        _view = null;
        _map = null;
        _base = null;
        _capacity = 0;
    }

    private static long CountLines(string path)
    {
        // Lines as replay reads them; the rest of a chunk that may continue in the next one is carried over.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
        var buffer = new byte[64 * 1024];
        long lines = 0;
        var inLine = false;
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            var span = buffer.AsSpan(0, read);
            while (!span.IsEmpty)
            {
                var next = inLine ? span.IndexOfAny((byte)'\n', (byte)0) : span.IndexOfAnyExcept((byte)'\n', (byte)0);
                if (next < 0)
                {
                    break;
                }

                lines += inLine ? 0 : 1;
                inLine = !inLine;
                span = span[next..];
            }
        }

        return lines;
    }
}
