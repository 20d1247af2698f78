using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace TokenGateway.Storage.Sqlite;

/// <summary>
/// The shared SQLite database file: opens tuned connections and applies every registered migration once per process.
/// </summary>
/// <remarks>
/// WAL mode lets the dashboard read while the ledger writes; <c>synchronous=NORMAL</c> in WAL keeps every committed
/// transaction across a process crash (only an OS crash or power loss can lose the last ones), which matches the
/// journal's own guarantee (page cache, no fsync).
/// </remarks>
internal sealed partial class SqliteDatabase
{
    private readonly StorageOptions _options;
    private readonly IReadOnlyList<SqliteMigration> _migrations;
    private readonly ILogger<SqliteDatabase> _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private readonly string _connectionString;
    private readonly string _pragmas;
    private volatile bool _initialized;

    public SqliteDatabase(IOptions<StorageOptions> options, IEnumerable<SqliteMigration> migrations, TimeProvider time, ILogger<SqliteDatabase> logger)
    {
        _options = options.Value;
        _migrations = [.. migrations.OrderBy(m => m.Component, StringComparer.Ordinal).ThenBy(m => m.Version)];
        _logger = logger;
        _time = time;
        _connectionString = _options.ConnectionString;
        var busyMs = (long)_options.BusyTimeout.TotalMilliseconds;

        // 16 MiB page cache per connection keeps the ledger's index pages hot on a multi-GB file.
        _pragmas = string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {busyMs}; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;");
    }

    /// <summary>Absolute path of the database file.</summary>
    public string Path => _options.DatabasePath;

    /// <summary>Opens a connection on an initialized database.</summary>
    public async ValueTask<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (!_initialized)
        {
            await InitializeAsync(cancellationToken);
        }

        return OpenRaw();
    }

    /// <summary>Creates the directory, switches to WAL and applies pending migrations; safe to call repeatedly.</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
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

            var directory = System.IO.Path.GetDirectoryName(_options.DatabasePath);
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }

            using var connection = OpenRaw();
            using (var wal = connection.CreateCommand())
            {
                wal.CommandText = "PRAGMA journal_mode = WAL;";
                var mode = Convert.ToString(wal.ExecuteScalar(), CultureInfo.InvariantCulture);
                if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                {
                    LogWalUnavailable(_logger, mode ?? "(null)");
                }
            }

            ApplyMigrations(connection);
            _initialized = true;
        }
        finally
        {
            _initLock.Release();
        }
    }

    private SqliteConnection OpenRaw()
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = _pragmas;
            command.ExecuteNonQuery();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private void ApplyMigrations(SqliteConnection connection)
    {
        using (var create = connection.CreateCommand())
        {
            create.CommandText = """
                CREATE TABLE IF NOT EXISTS schema_version (
                    component  TEXT    NOT NULL,
                    version    INTEGER NOT NULL,
                    applied_at TEXT    NOT NULL,
                    PRIMARY KEY (component, version)
                ) WITHOUT ROWID;
                """;
            create.ExecuteNonQuery();
        }

        foreach (var migration in _migrations)
        {
            // BEGIN IMMEDIATE takes the write lock first, so two processes starting together apply each step once.
            using var transaction = connection.BeginTransaction(deferred: false);
            using (var check = connection.CreateCommand())
            {
                check.Transaction = transaction;
                check.CommandText = "SELECT 1 FROM schema_version WHERE component = $c AND version = $v;";
                check.Parameters.AddWithValue("$c", migration.Component);
                check.Parameters.AddWithValue("$v", migration.Version);
                if (check.ExecuteScalar() is not null)
                {
                    continue;
                }
            }

            using (var apply = connection.CreateCommand())
            {
                apply.Transaction = transaction;
                apply.CommandText = migration.Sql;
                apply.ExecuteNonQuery();
            }

            using (var record = connection.CreateCommand())
            {
                record.Transaction = transaction;
                record.CommandText = "INSERT INTO schema_version (component, version, applied_at) VALUES ($c, $v, $at);";
                record.Parameters.AddWithValue("$c", migration.Component);
                record.Parameters.AddWithValue("$v", migration.Version);
                record.Parameters.AddWithValue("$at", _time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture));
                record.ExecuteNonQuery();
            }

            transaction.Commit();
            LogMigrationApplied(_logger, migration.Component, migration.Version, _options.DatabasePath);
        }
    }

    [LoggerMessage(4000, LogLevel.Information, "Applied storage migration {Component} v{Version} to {DatabasePath}")]
    private static partial void LogMigrationApplied(ILogger logger, string component, int version, string databasePath);

    [LoggerMessage(4001, LogLevel.Warning, "SQLite refused WAL mode (journal_mode = {Mode}); readers will block the ledger writer")]
    private static partial void LogWalUnavailable(ILogger logger, string mode);
}
