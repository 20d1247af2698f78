using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace TokenGateway.Storage.Postgres;

/// <summary>
/// The shared PostgreSQL database: one pooled <see cref="NpgsqlDataSource"/>, migrations applied once per database
/// under a session advisory lock (so replicas that start together apply each step exactly once and wait for each
/// other), and the ledger's monthly partitions.
/// </summary>
internal sealed partial class PostgresDatabase : IAsyncDisposable, IDisposable
{
    /// <summary>Advisory lock key of the migrator ('TGmigr' as bytes): every replica's migrator takes the same one.</summary>
    internal const long MigrationLockKey = 0x54_47_6D_69_67_72;

    /// <summary>Advisory lock key taken (per transaction) while a partition is created.</summary>
    internal const long PartitionLockKey = 0x54_47_70_61_72_74;

    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly PostgresStorageOptions _options;
    private readonly IReadOnlyList<PostgresMigration> _migrations;
    private readonly TimeProvider _time;
    private readonly ILogger<PostgresDatabase> _logger;
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private readonly SemaphoreSlim _partitionLock = new(1, 1);
    private readonly HashSet<DateOnly> _partitions = [];
    private volatile bool _initialized;

    public PostgresDatabase(
        IOptions<PostgresStorageOptions> options, IEnumerable<PostgresMigration> migrations, TimeProvider time, ILogger<PostgresDatabase> logger)
    {
        _options = options.Value;
        if (string.IsNullOrWhiteSpace(_options.ConnectionString))
        {
            throw new InvalidOperationException(
                $"PostgreSQL storage needs ConnectionStrings:{PostgresStorageOptions.ConnectionStringName} (an Npgsql connection string).");
        }

        _migrations = [.. migrations.OrderBy(m => m.Component, StringComparer.Ordinal).ThenBy(m => m.Version)];
        _time = time;
        _logger = logger;
        DataSource = NpgsqlDataSource.Create(_options.ConnectionString);
    }

    /// <summary>The pooled data source every store opens connections from.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>Settings in force.</summary>
    public PostgresStorageOptions Options => _options;

    /// <summary>Opens a connection on a migrated database.</summary>
    public async ValueTask<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (!_initialized)
        {
            await InitializeAsync(retry: false, cancellationToken);
        }

        return await DataSource.OpenConnectionAsync(cancellationToken);
    }

    /// <summary>
    /// Applies pending migrations and creates the ledger partitions around now. With <paramref name="retry"/> an
    /// unreachable server is retried until <see cref="PostgresStorageOptions.StartupTimeout"/> (start-up); safe to call repeatedly.
    /// </summary>
    public async Task InitializeAsync(bool retry, CancellationToken cancellationToken)
    {
        if (_initialized)
        {
            return;
        }

        await _initLock.WaitAsync(cancellationToken);
        try
        {
            if (_initialized)
            {
                return;
            }

            var deadline = _time.GetUtcNow() + _options.StartupTimeout;
            while (true)
            {
                try
                {
                    await MigrateAsync(cancellationToken);
                    break;
                }
                catch (Exception ex) when (retry && IsTransient(ex) && _time.GetUtcNow() < deadline && !cancellationToken.IsCancellationRequested)
                {
                    LogWaitingForServer(_logger, ex.Message);
                    await Task.Delay(RetryDelay, _time, cancellationToken);
                }
            }

            _initialized = true;
        }
        finally
        {
            _initLock.Release();
        }

        await EnsurePartitionsAsync(MonthsAround(_time.GetUtcNow()), cancellationToken);
    }

    /// <summary>Makes sure a monthly partition of <c>usage_events</c> exists for every month in <paramref name="months"/> (first days, UTC).</summary>
    public async ValueTask EnsurePartitionsAsync(IEnumerable<DateOnly> months, CancellationToken cancellationToken)
    {
        List<DateOnly>? missing = null;
        lock (_partitions)
        {
            foreach (var month in months)
            {
                if (!_partitions.Contains(month))
                {
                    (missing ??= []).Add(month);
                }
            }
        }

        if (missing is null)
        {
            return;
        }

        await _partitionLock.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await DataSource.OpenConnectionAsync(cancellationToken);
            foreach (var month in missing.Distinct().Order())
            {
                await CreatePartitionAsync(connection, month, cancellationToken);
                lock (_partitions)
                {
                    _partitions.Add(month);
                }
            }
        }
        finally
        {
            _partitionLock.Release();
        }
    }

    /// <summary>The first day of the month of <paramref name="time"/> (UTC).</summary>
    public static DateOnly MonthOf(DateTimeOffset time)
    {
        var utc = time.UtcDateTime;
        return new DateOnly(utc.Year, utc.Month, 1);
    }

    /// <summary>Name of the partition that holds <paramref name="month"/>.</summary>
    public static string PartitionName(DateOnly month) =>
        string.Create(CultureInfo.InvariantCulture, $"usage_events_p{month.Year:D4}{month.Month:D2}");

    /// <summary>Forgets which partitions exist (one was dropped under the writer): the next batch checks again.</summary>
    public void ForgetPartitions()
    {
        lock (_partitions)
        {
            _partitions.Clear();
        }
    }

    public async ValueTask DisposeAsync() => await DataSource.DisposeAsync();

    public void Dispose() => DataSource.Dispose();

    private IEnumerable<DateOnly> MonthsAround(DateTimeOffset now)
    {
        var month = MonthOf(now);
        for (var i = 0; i <= _options.PartitionMonthsAhead; i++)
        {
            yield return month.AddMonths(i);
        }
    }

    private async Task CreatePartitionAsync(NpgsqlConnection connection, DateOnly month, CancellationToken cancellationToken)
    {
        var name = PartitionName(month);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@lock)", connection, transaction))
        {
            // Replicas create the same month together: the existence check and the CREATE run under one lock.
            lockCommand.Parameters.AddWithValue("lock", PartitionLockKey);
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var exists = new NpgsqlCommand("SELECT to_regclass(@name) IS NOT NULL", connection, transaction))
        {
            exists.Parameters.AddWithValue("name", name);
            if ((bool)(await exists.ExecuteScalarAsync(cancellationToken))!)
            {
                await transaction.CommitAsync(cancellationToken);
                return;
            }
        }

        var from = month.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var to = month.AddMonths(1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

        // Identifiers and bounds come from a DateOnly, never from input.
        await using (var create = new NpgsqlCommand(
            $"CREATE TABLE {name} PARTITION OF usage_events FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')", connection, transaction))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        LogPartitionCreated(_logger, name);
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken);
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_lock(@key)", connection))
        {
            // Session lock: replicas starting together queue here; a crashed holder's lock dies with its connection.
            lockCommand.Parameters.AddWithValue("key", MigrationLockKey);
            lockCommand.CommandTimeout = 0;
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }

        try
        {
            await using (var create = new NpgsqlCommand("""
                CREATE TABLE IF NOT EXISTS schema_version (
                    component  text COLLATE "C" NOT NULL,
                    version    integer          NOT NULL,
                    applied_at timestamptz      NOT NULL,
                    PRIMARY KEY (component, version)
                )
                """, connection))
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }

            foreach (var migration in _migrations)
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await using (var check = new NpgsqlCommand("SELECT 1 FROM schema_version WHERE component = @c AND version = @v", connection, transaction))
                {
                    check.Parameters.AddWithValue("c", migration.Component);
                    check.Parameters.AddWithValue("v", migration.Version);
                    if (await check.ExecuteScalarAsync(cancellationToken) is not null)
                    {
                        continue;
                    }
                }

                await using (var apply = new NpgsqlCommand(migration.Sql, connection, transaction))
                {
                    await apply.ExecuteNonQueryAsync(cancellationToken);
                }

                await using (var record = new NpgsqlCommand(
                    "INSERT INTO schema_version (component, version, applied_at) VALUES (@c, @v, @at)", connection, transaction))
                {
                    record.Parameters.AddWithValue("c", migration.Component);
                    record.Parameters.AddWithValue("v", migration.Version);
                    record.Parameters.AddWithValue("at", _time.GetUtcNow());
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
                LogMigrationApplied(_logger, migration.Component, migration.Version, connection.Database ?? "(default)");
            }
        }
        finally
        {
            if (connection.State == System.Data.ConnectionState.Open)
            {
                await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", connection);
                unlock.Parameters.AddWithValue("key", MigrationLockKey);
                await unlock.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
    }

    /// <summary>True for failures that another attempt may not see: the server unreachable, restarting or refusing connections.</summary>
    internal static bool IsTransient(Exception ex) => ex switch
    {
        // 55000: the database does not accept connections (ALLOW_CONNECTIONS false); 57P0x: shutdown or start-up.
        PostgresException pg => pg.IsTransient || pg.SqlState is "55000" or "57P01" or "57P02" or "57P03",
        NpgsqlException npgsql => npgsql.IsTransient,
        TimeoutException or IOException or System.Net.Sockets.SocketException => true,
        _ => false,
    };

    [LoggerMessage(4100, LogLevel.Information, "Applied PostgreSQL storage migration {Component} v{Version} to database {Database}")]
    private static partial void LogMigrationApplied(ILogger logger, string component, int version, string database);

    [LoggerMessage(4101, LogLevel.Information, "Created ledger partition {Partition}")]
    private static partial void LogPartitionCreated(ILogger logger, string partition);

    [LoggerMessage(4102, LogLevel.Warning, "PostgreSQL is not reachable yet; retrying the storage migration: {Reason}")]
    private static partial void LogWaitingForServer(ILogger logger, string reason);
}
