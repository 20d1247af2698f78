using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;

namespace TokenGateway.Cli;

/// <summary>
/// The model catalogue for offline runs: <c>src/TokenGateway/catalog.json</c> when found (searched upwards from the
/// working directory), else one built-in default card per dialect.
/// </summary>
internal sealed class ModelCatalogLoader
{
    private static readonly JsonSerializerOptions _options = new() { PropertyNameCaseInsensitive = true, Converters = { new JsonStringEnumConverter() } };

    private readonly ModelCatalog _catalog;

    private ModelCatalogLoader(ModelCatalog catalog) => _catalog = catalog;

    /// <summary>Used for OpenAI-shaped requests whose model is unknown.</summary>
    public static ModelCard DefaultOpenAI { get; } = new() { Name = "gpt-4o", Provider = "openai", Tokenizer = "o200k_base", ContextWindow = 128_000, MaxOutputTokens = 16_384 };

    /// <summary>Used for Anthropic-shaped requests whose model is unknown.</summary>
    public static ModelCard DefaultAnthropic { get; } = new()
    {
        Name = "claude-sonnet-4-5", Provider = "anthropic", Tokenizer = "claude", ContextWindow = 200_000, MaxOutputTokens = 64_000, CacheMinTokens = 1024,
    };

    public static ModelCatalogLoader Load(TextWriter log, string? startDirectory = null)
    {
        for (var dir = new DirectoryInfo(startDirectory ?? Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "src", "TokenGateway", "catalog.json");
            if (File.Exists(path))
            {
                try
                {
                    return new ModelCatalogLoader(Parse(File.ReadAllText(path)));
                }
                catch (Exception ex) when (ex is JsonException or InvalidDataException)
                {
                    log.WriteLine($"Ignoring {path}: {ex.Message}");
                    break;
                }
            }
        }

        return new ModelCatalogLoader(new ModelCatalog([DefaultOpenAI, DefaultAnthropic]));
    }

    /// <summary>Reads <c>{"Models": {name: card}}</c>, <c>{name: card}</c> or <c>[card, …]</c>.</summary>
    internal static ModelCatalog Parse(string json)
    {
        var root = JsonNode.Parse(json);
        if (root is JsonObject o && (o["Models"] ?? o["models"]) is { } inner)
        {
            root = inner;
        }

        var cards = new List<ModelCard>();
        switch (root)
        {
            case JsonArray array:
                foreach (var item in array.OfType<JsonObject>())
                {
                    var name = (string?)item["name"] ?? (string?)item["Name"] ?? throw new InvalidDataException("A model card has no name.");
                    cards.Add(item.Deserialize<ModelCardOptions>(_options)!.ToCard(name));
                }

                break;
            case JsonObject map:
                foreach (var (name, card) in map)
                {
                    if (card is JsonObject c)
                    {
                        cards.Add(c.Deserialize<ModelCardOptions>(_options)!.ToCard(name));
                    }
                }

                break;
            default:
                throw new InvalidDataException("Expected an object or an array of model cards.");
        }

        return new ModelCatalog(cards);
    }

    public ModelCard Resolve(string model, LlmDialect dialect) =>
        _catalog.TryResolve(model, out var card) ? card : dialect.IsAnthropic() ? DefaultAnthropic : DefaultOpenAI;
}
