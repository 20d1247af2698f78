using System.Text.Json;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Storage.Policies;

/// <summary>Row mapping shared by the SQLite and PostgreSQL policy stores.</summary>
internal static class PolicyRows
{
    /// <summary>The stored name of a scope.</summary>
    public static string ScopeName(PolicyScope scope) => scope switch
    {
        PolicyScope.Default => "default",
        PolicyScope.Team => "team",
        PolicyScope.Key => "key",
        _ => throw new ArgumentOutOfRangeException(nameof(scope), scope, "Unknown policy scope."),
    };

    /// <summary>Maps a stored policy row; JSON that is not a policy is an <see cref="InvalidDataException"/>.</summary>
    public static StoredPolicy Read(PolicyScope scope, string id, string json, DateTimeOffset updatedAt)
    {
        TeamPolicy? policy;
        try
        {
            policy = JsonSerializer.Deserialize<TeamPolicy>(json, PolicyJson.Options);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"The stored {ScopeName(scope)} policy '{id}' is not valid policy JSON: {ex.Message}", ex);
        }

        return new StoredPolicy(scope, id, policy ?? TeamPolicy.Empty, updatedAt);
    }
}
