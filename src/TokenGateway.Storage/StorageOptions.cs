using System.ComponentModel.DataAnnotations;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace TokenGateway.Storage;

/// <summary>Settings for the embedded SQLite store and the durable usage ledger (configuration section <c>Storage</c>).</summary>
public sealed class StorageOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Storage";

    /// <summary>Directory that holds the database and the ledger journal; relative paths resolve against the working directory.</summary>
    [Required]
    public string DataDirectory { get; set; } = "./data";

    /// <summary>SQLite database file, relative to <see cref="DataDirectory"/> unless absolute.</summary>
    [Required]
    public string DatabaseFile { get; set; } = "tokengateway.db";

    /// <summary>Capacity of the in-memory ledger queue; beyond it events are picked up from the journal instead.</summary>
    [Range(16, 10_000_000)]
    public int LedgerQueueCapacity { get; set; } = 10_000;

    /// <summary>Maximum events per ledger transaction.</summary>
    [Range(1, 100_000)]
    public int LedgerBatchSize { get; set; } = 500;

    /// <summary>How long the writer waits for a batch to fill before committing what it has.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan LedgerFlushInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Base name of the ledger journal (spool) segment files, relative to <see cref="DataDirectory"/> unless absolute.</summary>
    [Required]
    public string LedgerJournalFile { get; set; } = "usage-ledger.journal";

    /// <summary>A journal segment is sealed and a new one started beyond this size.</summary>
    [Range(4096, long.MaxValue)]
    public long LedgerJournalSegmentBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Longest pause between retries while the store is failing (the backoff doubles up to this).</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan LedgerMaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long SQLite waits on a locked database before failing (<c>busy_timeout</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Absolute path of the database file.</summary>
    public string DatabasePath => Path.GetFullPath(Path.Combine(DataDirectory, DatabaseFile));

    /// <summary>Absolute base path of the journal segment files.</summary>
    public string JournalPath => Path.GetFullPath(Path.Combine(DataDirectory, LedgerJournalFile));

    /// <summary>Connection string for the database file, so other stores can share it.</summary>
    /// <remarks>Callers should still run <c>PRAGMA busy_timeout</c> and <c>foreign_keys</c> per connection, or open connections through the storage layer.</remarks>
    public string ConnectionString => new SqliteConnectionStringBuilder
    {
        DataSource = DatabasePath,
        Mode = SqliteOpenMode.ReadWriteCreate,
        Cache = SqliteCacheMode.Default,
        Pooling = true,
        ForeignKeys = true,
        DefaultTimeout = Math.Max(1, (int)Math.Ceiling(BusyTimeout.TotalSeconds)),
    }.ToString();
}

/// <summary>Source-generated checks of <see cref="StorageOptions"/>' data annotations.</summary>
[OptionsValidator]
internal sealed partial class StorageOptionsValidator : IValidateOptions<StorageOptions>;
