using System.Data.Common;
using System.Text.Json.Nodes;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Storage.Schemas;

/// <summary>Validation and row mapping shared by the SQLite and PostgreSQL schema registries.</summary>
internal static class SchemaRows
{
    /// <summary>Columns <see cref="Read"/> expects, in order.</summary>
    public const string Columns = "name, version, json, description, created_at";

    /// <summary>Throws unless <paramref name="name"/> is a valid schema name.</summary>
    public static void ValidateName(string name)
    {
        if (!SchemaName.IsValid(name))
        {
            throw new ArgumentException("Schema names are 1-64 letters, digits, '.', '_' or '-'.", nameof(name));
        }
    }

    /// <summary>Maps a <see cref="Columns"/> row.</summary>
    public static StoredSchema Read(DbDataReader reader, TimestampColumn time)
    {
        var name = reader.GetString(0);
        var version = reader.GetInt32(1);
        if (JsonNode.Parse(reader.GetString(2)) is not JsonObject schema)
        {
            throw new InvalidDataException($"The stored schema '{name}' v{version} is not a JSON object.");
        }

        return new StoredSchema(name, version, schema, reader.IsDBNull(3) ? null : reader.GetString(3), time(reader, 4));
    }

    /// <summary>Maps a <c>name, MAX(version), COUNT(*), MAX(created_at)</c> row (count as a 32-bit integer).</summary>
    public static SchemaSummary ReadSummary(DbDataReader reader, TimestampColumn time) =>
        new(reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2), time(reader, 3));
}
