using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Optimization;

/// <summary>
/// A policy's <c>optimization</c> section with its per-route and per-model overrides:
/// <c>{ …stage settings…, "routes": { "/v1/messages": {…} }, "models": { "gpt-4o*": {…} } }</c>.
/// </summary>
/// <remarks>
/// Layers apply in order of specificity: the section's own settings, then the matching route override, then every
/// matching model override in declaration order. Each layer inherits what it does not set. Resolutions are cached
/// per (model, route) so the hot path does no parsing.
/// </remarks>
public sealed class ScopedOptimizationPolicy
{
    private const string RoutesKey = "routes";
    private const string ModelsKey = "models";

    private readonly OptimizationPolicy _base;
    private readonly IReadOnlyList<(string Route, JsonObject Settings)> _routes;
    private readonly IReadOnlyList<(ModelPattern Pattern, JsonObject Settings)> _models;
    private readonly ConcurrentDictionary<(string Model, string Route), OptimizationPolicy> _resolved = new();

    private ScopedOptimizationPolicy(OptimizationPolicy basePolicy, IReadOnlyList<(string, JsonObject)> routes, IReadOnlyList<(ModelPattern, JsonObject)> models)
    {
        _base = basePolicy;
        _routes = routes;
        _models = models;
    }

    /// <summary>The section without overrides applies to everything.</summary>
    public static ScopedOptimizationPolicy Default { get; } = new(OptimizationPolicy.Default, [], []);

    /// <summary>Parses a section; problems (including in overrides) are reported in <paramref name="errors"/>.</summary>
    public static ScopedOptimizationPolicy Parse(JsonObject? section, out IReadOnlyList<string> errors)
    {
        if (section is null)
        {
            errors = [];
            return Default;
        }

        var problems = new List<string>();
        var own = new JsonObject();
        var routes = new List<(string, JsonObject)>();
        var models = new List<(ModelPattern, JsonObject)>();
        foreach (var (name, value) in section)
        {
            switch (name)
            {
                case RoutesKey or ModelsKey when value is JsonObject overrides:
                    foreach (var (key, settings) in overrides)
                    {
                        if (settings is not JsonObject obj)
                        {
                            problems.Add($"{name}.{key}: must be an object of stage settings.");
                            continue;
                        }

                        OptimizationPolicy.FromJson(obj, out var overrideErrors);
                        problems.AddRange(overrideErrors.Select(e => $"{name}.{key}: {e}"));
                        if (name == RoutesKey)
                        {
                            routes.Add((key, obj));
                        }
                        else
                        {
                            models.Add((new ModelPattern(key), obj));
                        }
                    }

                    break;
                case RoutesKey or ModelsKey:
                    problems.Add($"{name}: must be an object keyed by {(name == RoutesKey ? "route path" : "model pattern")}.");
                    break;
                default:
                    own[name] = value?.DeepClone();
                    break;
            }
        }

        var basePolicy = OptimizationPolicy.FromJson(own, out var baseErrors);
        problems.InsertRange(0, baseErrors);
        errors = problems;
        return new ScopedOptimizationPolicy(basePolicy, routes, models);
    }

    /// <summary>The effective stage settings for <paramref name="model"/> on <paramref name="route"/>.</summary>
    public OptimizationPolicy Resolve(string model, string route)
    {
        if (_routes.Count == 0 && _models.Count == 0)
        {
            return _base;
        }

        return _resolved.GetOrAdd((model, route), static (key, self) =>
        {
            var policy = self._base;
            foreach (var (r, settings) in self._routes)
            {
                if (string.Equals(r, key.Route, StringComparison.OrdinalIgnoreCase))
                {
                    policy = OptimizationPolicy.FromJson(settings, out _, policy);
                }
            }

            foreach (var (pattern, settings) in self._models)
            {
                if (pattern.IsMatch(key.Model))
                {
                    policy = OptimizationPolicy.FromJson(settings, out _, policy);
                }
            }

            return policy;
        }, this);
    }
}
