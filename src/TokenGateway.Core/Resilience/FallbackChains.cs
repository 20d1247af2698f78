using TokenGateway.Core.Models;

namespace TokenGateway.Core.Resilience;

/// <summary>
/// Fallback chains: per model in the catalogue (<c>Models:{name}:Fallbacks</c>) and per team policy
/// (<c>"fallbacks": {"gpt-4o-mini": ["gpt-4.1-mini"]}</c>, which replaces the catalogue's chain for that model).
/// </summary>
/// <remarks>
/// A chain expands depth-first: after a fallback's own deployments and keys, its own chain follows, so
/// <c>A → [B, C]</c> with <c>B → [D]</c> tries A, B, D, C. Duplicates are dropped, the length is bounded, and only
/// models the team may use, of the same kind as the requested one (and of a compatible dialect, as the caller's
/// <c>dialectOf</c> says), are kept. A fallback of the other API is valid: the gateway translates the request for it
/// (issue #16) and skips it per request when the translator refuses that request.
/// </remarks>
public static class FallbackChains
{
    /// <summary>Most models a team policy may give a chain for.</summary>
    public const int MaxPolicyEntries = 200;

    /// <summary>The fallback models for <paramref name="primary"/>, in the order they are tried (the primary excluded).</summary>
    /// <param name="primary">The requested model's card.</param>
    /// <param name="catalog">The model catalogue.</param>
    /// <param name="teamFallbacks">The team policy's chains, if any (keys: model names or aliases).</param>
    /// <param name="isAllowed">The team's model rule (allow/deny) on canonical model names.</param>
    /// <param name="dialectOf">The wire dialect family of a model (e.g. "openai", "anthropic"); null = speaks every dialect.</param>
    /// <param name="maxLength">The longest chain returned.</param>
    public static IReadOnlyList<ModelCard> Resolve(
        ModelCard primary,
        ModelCatalog catalog,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? teamFallbacks,
        Func<string, bool> isAllowed,
        Func<ModelCard, string?> dialectOf,
        int maxLength)
    {
        ArgumentNullException.ThrowIfNull(primary);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(isAllowed);
        ArgumentNullException.ThrowIfNull(dialectOf);
        if (maxLength <= 0 || (primary.Fallbacks.Count == 0 && (teamFallbacks is null || teamFallbacks.Count == 0)))
        {
            return [];
        }

        var dialect = dialectOf(primary);
        var result = new List<ModelCard>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { primary.Name };
        Expand(primary, 0);
        return result;

        void Expand(ModelCard card, int depth)
        {
            // Depth is bounded by the chain length; a cycle cannot recurse because every name is visited once.
            foreach (var name in ChainOf(card, teamFallbacks))
            {
                if (result.Count >= maxLength || depth > maxLength)
                {
                    return;
                }

                if (!catalog.TryResolve(name, out var next) || !seen.Add(next.Name))
                {
                    continue;
                }

                if (next.Kind == primary.Kind && isAllowed(next.Name) && Compatible(dialect, dialectOf(next)))
                {
                    result.Add(next);
                }

                Expand(next, depth + 1);
            }
        }
    }

    /// <summary>
    /// Validates chains: names present and well-formed, no self-reference or duplicates, at most
    /// <paramref name="maxLength"/> entries, no cycles — and, with a <paramref name="catalog"/>, that every model
    /// exists and has the same kind. A model of the other API is accepted: cross-dialect fallbacks are translated.
    /// </summary>
    /// <param name="chains">Model name → its fallbacks.</param>
    /// <param name="catalog">The catalogue, when known (start-up validation); null checks the structure only.</param>
    /// <param name="maxLength">Most entries per chain.</param>
    /// <param name="pathOf">Builds the error path for a model's chain (e.g. <c>Models:gpt-4o:Fallbacks</c>).</param>
    /// <param name="errors">Receives the problems found.</param>
    public static void Validate(
        IReadOnlyDictionary<string, IReadOnlyList<string>> chains,
        ModelCatalog? catalog,
        int maxLength,
        Func<string, string> pathOf,
        ICollection<SettingError> errors)
    {
        ArgumentNullException.ThrowIfNull(chains);
        ArgumentNullException.ThrowIfNull(pathOf);
        ArgumentNullException.ThrowIfNull(errors);
        var canonical = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (model, list) in chains)
        {
            var path = pathOf(model);
            if (string.IsNullOrWhiteSpace(model))
            {
                errors.Add(new(path, "The model name a chain belongs to must not be empty."));
                continue;
            }

            ModelCard? owner = null;
            if (catalog is not null && !catalog.TryResolve(model, out owner))
            {
                errors.Add(new(path, $"Model '{model}' is not in the catalogue."));
            }

            if (list is null)
            {
                errors.Add(new(path, "Must be an array of model names."));
                continue;
            }

            if (list.Count > maxLength)
            {
                errors.Add(new(path, $"At most {maxLength} fallback models are allowed (got {list.Count}); raise Resilience:MaxFallbacks (up to {ResilienceLimits.MaxFallbacks}) for longer chains."));
            }

            var ownerName = owner?.Name ?? model;
            var targets = new List<string>();
            var distinct = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < list.Count; i++)
            {
                var entry = list[i];
                var entryPath = $"{path}[{i}]";
                if (string.IsNullOrWhiteSpace(entry) || entry.Length > 200 || entry.Any(char.IsWhiteSpace))
                {
                    errors.Add(new(entryPath, "Must be a model name (non-empty, no whitespace, at most 200 characters)."));
                    continue;
                }

                var name = entry;
                if (catalog is not null)
                {
                    if (!catalog.TryResolve(entry, out var card))
                    {
                        errors.Add(new(entryPath, $"Model '{entry}' is not in the catalogue."));
                        continue;
                    }

                    name = card.Name;
                    if (owner is not null && card.Kind != owner.Kind)
                    {
                        errors.Add(new(entryPath, $"'{card.Name}' is a {card.Kind} model and cannot stand in for the {owner.Kind} model '{owner.Name}'."));
                    }
                }

                if (string.Equals(name, ownerName, StringComparison.OrdinalIgnoreCase))
                {
                    errors.Add(new(entryPath, $"A model cannot fall back to itself ('{entry}')."));
                    continue;
                }

                if (!distinct.Add(name))
                {
                    errors.Add(new(entryPath, $"'{entry}' appears twice in the chain."));
                    continue;
                }

                targets.Add(name);
            }

            canonical[ownerName] = targets;
        }

        foreach (var cycle in FindCycles(canonical))
        {
            errors.Add(new(pathOf(cycle[0]), $"Fallback chains form a cycle: {string.Join(" → ", cycle)}."));
        }
    }

    private static IEnumerable<string> ChainOf(ModelCard card, IReadOnlyDictionary<string, IReadOnlyList<string>>? team)
    {
        if (team is not null)
        {
            if (team.TryGetValue(card.Name, out var own))
            {
                return own;
            }

            foreach (var alias in card.Aliases)
            {
                if (team.TryGetValue(alias, out own))
                {
                    return own;
                }
            }

            // Policy JSON dictionaries compare keys ordinally; model names are case-insensitive everywhere else.
            foreach (var (name, chain) in team)
            {
                if (string.Equals(name, card.Name, StringComparison.OrdinalIgnoreCase)
                    || card.Aliases.Any(a => string.Equals(a, name, StringComparison.OrdinalIgnoreCase)))
                {
                    return chain;
                }
            }
        }

        return card.Fallbacks;
    }

    private static bool Compatible(string? a, string? b) =>
        a is null || b is null || string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    private static List<List<string>> FindCycles(Dictionary<string, List<string>> graph)
    {
        // Colouring DFS (recursion depth ≤ number of models); reports each cycle where it is first closed.
        var cycles = new List<List<string>>();
        var state = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase); // 1 = on stack, 2 = done
        var stack = new List<string>();
        foreach (var start in graph.Keys)
        {
            Visit(start);
        }

        return cycles;

        void Visit(string node)
        {
            if (state.TryGetValue(node, out var s))
            {
                if (s == 1)
                {
                    var from = stack.FindIndex(n => string.Equals(n, node, StringComparison.OrdinalIgnoreCase));
                    var cycle = stack.GetRange(from, stack.Count - from);
                    cycle.Add(node);
                    cycles.Add(cycle);
                }

                return;
            }

            state[node] = 1;
            stack.Add(node);
            if (graph.TryGetValue(node, out var next))
            {
                foreach (var n in next)
                {
                    Visit(n);
                }
            }

            stack.RemoveAt(stack.Count - 1);
            state[node] = 2;
        }
    }
}
