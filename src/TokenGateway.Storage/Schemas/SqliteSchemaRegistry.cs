using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Storage.Schemas;

/// <summary>
/// <see cref="ISchemaRegistry"/> on SQLite: one append-only table <c>output_schemas(name, version, json, description,
/// created_at)</c>, created on first use. Shares the database file with the other stores; touches only its own table.
/// </summary>
public sealed class SqliteSchemaRegistry : ISchemaRegistry
{
    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private volatile bool _initialized;

    /// <summary>Creates the registry for <paramref name="connectionString"/> (e.g. <c>Data Source=data/tokengateway.db</c>).</summary>
    public SqliteSchemaRegistry(string connectionString, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        ArgumentNullException.ThrowIfNull(time);
        _connectionString = connectionString;
        _time = time;
    }

    /// <inheritdoc />
    public async Task<StoredSchema> AddVersionAsync(string name, JsonObject schema, string? description, CancellationToken cancellationToken)
    {
        if (!SchemaName.IsValid(name))
        {
            throw new ArgumentException("Schema names are 1-64 letters, digits, '.', '_' or '-'.", nameof(name));
        }

        ArgumentNullException.ThrowIfNull(schema);
        var now = _time.GetUtcNow();
        await using var connection = await OpenAsync(cancellationToken);
        // BEGIN IMMEDIATE: two concurrent creates of the same name get consecutive versions, never the same one.
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(System.Data.IsolationLevel.Serializable, cancellationToken);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO output_schemas (name, version, json, description, created_at)
            VALUES ($name, (SELECT COALESCE(MAX(version), 0) + 1 FROM output_schemas WHERE name = $name), $json, $description, $created)
            RETURNING version
            """;
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$json", schema.ToJsonString());
        command.Parameters.AddWithValue("$description", (object?)description ?? DBNull.Value);
        command.Parameters.AddWithValue("$created", now.ToString("O", CultureInfo.InvariantCulture));
        var version = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
        await transaction.CommitAsync(cancellationToken);
        return new StoredSchema(name, version, (JsonObject)schema.DeepClone(), description, now);
    }

    /// <inheritdoc />
    public Task<StoredSchema?> GetLatestAsync(string name, CancellationToken cancellationToken) =>
        GetOneAsync("SELECT name, version, json, description, created_at FROM output_schemas WHERE name = $name ORDER BY version DESC LIMIT 1",
            name, null, cancellationToken);

    /// <inheritdoc />
    public Task<StoredSchema?> GetVersionAsync(string name, int version, CancellationToken cancellationToken) =>
        GetOneAsync("SELECT name, version, json, description, created_at FROM output_schemas WHERE name = $name AND version = $version",
            name, version, cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<SchemaSummary>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, MAX(version), COUNT(*), MAX(created_at) FROM output_schemas GROUP BY name ORDER BY name";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var result = new List<SchemaSummary>();
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new SchemaSummary(reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2), ParseTime(reader.GetString(3))));
        }

        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredSchema>> ListVersionsAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, version, json, description, created_at FROM output_schemas WHERE name = $name ORDER BY version";
        command.Parameters.AddWithValue("$name", name);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var result = new List<StoredSchema>();
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(Read(reader));
        }

        return result;
    }

    private async Task<StoredSchema?> GetOneAsync(string sql, string name, int? version, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$name", name);
        if (version is { } v)
        {
            command.Parameters.AddWithValue("$version", v);
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    private static StoredSchema Read(SqliteDataReader reader)
    {
        var name = reader.GetString(0);
        var version = reader.GetInt32(1);
        if (JsonNode.Parse(reader.GetString(2)) is not JsonObject schema)
        {
            throw new InvalidDataException($"The stored schema '{name}' v{version} is not a JSON object.");
        }

        return new StoredSchema(name, version, schema, reader.IsDBNull(3) ? null : reader.GetString(3), ParseTime(reader.GetString(4)));
    }

    private static DateTimeOffset ParseTime(string text) =>
        DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (!_initialized)
        {
            await InitializeAsync(cancellationToken);
        }

        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var busy = connection.CreateCommand();
            busy.CommandText = "PRAGMA busy_timeout = 5000;";
            await busy.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await _initLock.WaitAsync(cancellationToken);
        try
        {
            if (_initialized)
            {
                return;
            }

            var dataSource = new SqliteConnectionStringBuilder(_connectionString).DataSource;
            if (!string.IsNullOrEmpty(dataSource) && dataSource != ":memory:" && !dataSource.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
            {
                var directory = Path.GetDirectoryName(Path.GetFullPath(dataSource));
                if (!string.IsNullOrEmpty(directory))
                {
                    Directory.CreateDirectory(directory);
                }
            }

            await using var connection = new SqliteConnection(_connectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE IF NOT EXISTS output_schemas (
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    json TEXT NOT NULL,
                    description TEXT NULL,
                    created_at TEXT NOT NULL,
                    PRIMARY KEY (name, version)
                ) WITHOUT ROWID;
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            _initialized = true;
        }
        finally
        {
            _initLock.Release();
        }
    }
}
