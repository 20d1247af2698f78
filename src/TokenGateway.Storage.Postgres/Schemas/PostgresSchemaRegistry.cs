using System.Data.Common;
using System.Text.Json.Nodes;
using Npgsql;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Storage.Schemas;

namespace TokenGateway.Storage.Postgres.Schemas;

/// <summary>
/// <see cref="ISchemaRegistry"/> on PostgreSQL: the append-only table <c>output_schemas(name, version, json,
/// description, created_at)</c>, as in SQLite. The JSON is kept as text so a schema reads back byte for byte.
/// </summary>
internal sealed class PostgresSchemaRegistry(PostgresDatabase database, TimeProvider time) : ISchemaRegistry
{
    private const string Columns = SchemaRows.Columns;

    /// <inheritdoc />
    public async Task<StoredSchema> AddVersionAsync(string name, JsonObject schema, string? description, CancellationToken cancellationToken)
    {
        SchemaRows.ValidateName(name);

        ArgumentNullException.ThrowIfNull(schema);
        var now = PostgresTime.Microseconds(time.GetUtcNow());
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        // A transaction lock per name: concurrent creates of one name (from any replica) get consecutive versions.
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('output_schemas:' || @name, 0))", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue("name", name);
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var command = new NpgsqlCommand("""
            INSERT INTO output_schemas (name, version, json, description, created_at)
            VALUES (@name, (SELECT COALESCE(MAX(version), 0) + 1 FROM output_schemas WHERE name = @name), @json, @description, @created)
            RETURNING version
            """, connection, transaction);
        command.Parameters.AddWithValue("name", name);
        command.Parameters.AddWithValue("json", schema.ToJsonString());
        command.Parameters.Add(new NpgsqlParameter<string?>("description", NpgsqlTypes.NpgsqlDbType.Text) { TypedValue = description });
        command.Parameters.AddWithValue("created", now);
        var version = (int)(await command.ExecuteScalarAsync(cancellationToken))!;
        await transaction.CommitAsync(cancellationToken);
        return new StoredSchema(name, version, (JsonObject)schema.DeepClone(), description, now);
    }

    /// <inheritdoc />
    public Task<StoredSchema?> GetLatestAsync(string name, CancellationToken cancellationToken) =>
        GetOneAsync($"SELECT {Columns} FROM output_schemas WHERE name = @name ORDER BY version DESC LIMIT 1", name, null, cancellationToken);

    /// <inheritdoc />
    public Task<StoredSchema?> GetVersionAsync(string name, int version, CancellationToken cancellationToken) =>
        GetOneAsync($"SELECT {Columns} FROM output_schemas WHERE name = @name AND version = @version", name, version, cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<SchemaSummary>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT name, MAX(version), COUNT(*)::integer, MAX(created_at) FROM output_schemas GROUP BY name ORDER BY name", connection);
        return await StoreRows.ReadAllAsync(command, static reader => SchemaRows.ReadSummary(reader, StoreRows.Native), cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredSchema>> ListVersionsAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand($"SELECT {Columns} FROM output_schemas WHERE name = @name ORDER BY version", connection);
        command.Parameters.AddWithValue("name", name);
        return await StoreRows.ReadAllAsync(command, Read, cancellationToken);
    }

    private async Task<StoredSchema?> GetOneAsync(string sql, string name, int? version, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("name", name);
        if (version is { } v)
        {
            command.Parameters.AddWithValue("version", v);
        }

        return await StoreRows.ReadFirstAsync(command, Read, cancellationToken);
    }

    private static StoredSchema Read(DbDataReader reader) => SchemaRows.Read(reader, StoreRows.Native);
}
