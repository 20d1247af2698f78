using System.Text.Json.Nodes;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>One immutable version of a registered schema.</summary>
/// <param name="Name">The schema name.</param>
/// <param name="Version">1, 2, … in creation order.</param>
/// <param name="Schema">The JSON Schema.</param>
/// <param name="Description">Optional free text.</param>
/// <param name="CreatedAt">When the version was created (UTC).</param>
public sealed record StoredSchema(string Name, int Version, JsonObject Schema, string? Description, DateTimeOffset CreatedAt);

/// <summary>A schema name with its newest version and how many versions exist.</summary>
public sealed record SchemaSummary(string Name, int LatestVersion, int Versions, DateTimeOffset UpdatedAt);

/// <summary>Versioned named JSON schemas, applied by header or policy. Versions are append-only.</summary>
public interface ISchemaRegistry
{
    /// <summary>Stores <paramref name="schema"/> as the next version of <paramref name="name"/> (1 for a new name).</summary>
    Task<StoredSchema> AddVersionAsync(string name, JsonObject schema, string? description, CancellationToken cancellationToken);

    /// <summary>The newest version of <paramref name="name"/>, or null.</summary>
    Task<StoredSchema?> GetLatestAsync(string name, CancellationToken cancellationToken);

    /// <summary>One version of <paramref name="name"/>, or null.</summary>
    Task<StoredSchema?> GetVersionAsync(string name, int version, CancellationToken cancellationToken);

    /// <summary>Every schema name with its latest version, ordered by name.</summary>
    Task<IReadOnlyList<SchemaSummary>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Every version of <paramref name="name"/>, oldest first (empty when unknown).</summary>
    Task<IReadOnlyList<StoredSchema>> ListVersionsAsync(string name, CancellationToken cancellationToken);
}
