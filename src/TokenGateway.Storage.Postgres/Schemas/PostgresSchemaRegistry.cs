using System.Text.Json.Nodes;
using Npgsql;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Storage.Postgres.Schemas;

/// <summary>
/// <see cref="ISchemaRegistry"/> on PostgreSQL: the append-only table <c>output_schemas(name, version, json,
/// description, created_at)</c>, as in SQLite. The JSON is kept as text so a schema reads back byte for byte.
/// </summary>
internal sealed class PostgresSchemaRegistry(PostgresDatabase database, TimeProvider time) : ISchemaRegistry
{
    private const string Columns = "name, version, json, description, created_at";

    /// <inheritdoc />
    public async Task<StoredSchema> AddVersionAsync(string name, JsonObject schema, string? description, CancellationToken cancellationToken)
    {
        if (!SchemaName.IsValid(name))
        {
            throw new ArgumentException("Schema names are 1-64 letters, digits, '.', '_' or '-'.", nameof(name));
        }

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
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var result = new List<SchemaSummary>();
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new SchemaSummary(reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetFieldValue<DateTimeOffset>(3)));
        }

        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredSchema>> ListVersionsAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand($"SELECT {Columns} FROM output_schemas WHERE name = @name ORDER BY version", connection);
        command.Parameters.AddWithValue("name", name);
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
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("name", name);
        if (version is { } v)
        {
            command.Parameters.AddWithValue("version", v);
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    private static StoredSchema Read(NpgsqlDataReader reader)
    {
        var name = reader.GetString(0);
        var version = reader.GetInt32(1);
        if (JsonNode.Parse(reader.GetString(2)) is not JsonObject schema)
        {
            throw new InvalidDataException($"The stored schema '{name}' v{version} is not a JSON object.");
        }

        return new StoredSchema(name, version, schema, reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetFieldValue<DateTimeOffset>(4));
    }
}
