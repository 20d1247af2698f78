using System.Data.Common;
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
        SchemaRows.ValidateName(name);

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
        GetOneAsync($"SELECT {SchemaRows.Columns} FROM output_schemas WHERE name = $name ORDER BY version DESC LIMIT 1",
            name, null, cancellationToken);

    /// <inheritdoc />
    public Task<StoredSchema?> GetVersionAsync(string name, int version, CancellationToken cancellationToken) =>
        GetOneAsync($"SELECT {SchemaRows.Columns} FROM output_schemas WHERE name = $name AND version = $version",
            name, version, cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<SchemaSummary>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, MAX(version), COUNT(*), MAX(created_at) FROM output_schemas GROUP BY name ORDER BY name";
        return await StoreRows.ReadAllAsync(command, static reader => SchemaRows.ReadSummary(reader, StoreRows.RoundtripText), cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredSchema>> ListVersionsAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {SchemaRows.Columns} FROM output_schemas WHERE name = $name ORDER BY version";
        command.Parameters.AddWithValue("$name", name);
        return await StoreRows.ReadAllAsync(command, Read, cancellationToken);
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

        return await StoreRows.ReadFirstAsync(command, Read, cancellationToken);
    }

    private static StoredSchema Read(DbDataReader reader) => SchemaRows.Read(reader, StoreRows.RoundtripText);

    private ValueTask<SqliteConnection> OpenAsync(CancellationToken cancellationToken) => _database.OpenAsync(cancellationToken);
}
