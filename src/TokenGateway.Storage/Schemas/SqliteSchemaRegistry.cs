using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Storage.Sqlite;

namespace TokenGateway.Storage.Schemas;

/// <summary>
/// <see cref="ISchemaRegistry"/> on SQLite: one append-only table <c>output_schemas(name, version, json, description,
/// created_at)</c> in the shared storage database, created by its migration (<see cref="OutputSchemaSchema"/>);
/// touches only its own table.
/// </summary>
internal sealed class SqliteSchemaRegistry(SqliteDatabase database, TimeProvider time) : ISchemaRegistry
{
    private readonly SqliteDatabase _database = database;
    private readonly TimeProvider _time = time;

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

    private ValueTask<SqliteConnection> OpenAsync(CancellationToken cancellationToken) => _database.OpenAsync(cancellationToken);
}
