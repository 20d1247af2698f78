using System.Collections.Frozen;

namespace TokenGateway.Core.Models;

/// <summary>Resolves model names and aliases to <see cref="ModelCard"/>s; immutable once built.</summary>
public sealed class ModelCatalog
{
    private readonly FrozenDictionary<string, ModelCard> _byName;

    /// <summary>Builds the catalogue; later cards with a duplicate name or alias replace earlier ones.</summary>
    public ModelCatalog(IEnumerable<ModelCard> cards)
    {
        ArgumentNullException.ThrowIfNull(cards);
        var map = new Dictionary<string, ModelCard>(StringComparer.OrdinalIgnoreCase);
        var list = new List<ModelCard>();
        foreach (var card in cards)
        {
            list.Add(card);
            map[card.Name] = card;
            foreach (var alias in card.Aliases)
            {
                map[alias] = card;
            }
        }

        _byName = map.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
        Models = list;
    }

    /// <summary>Every card, in configuration order.</summary>
    public IReadOnlyList<ModelCard> Models { get; }

    /// <summary>Finds the card for a model name or alias.</summary>
    public bool TryResolve(string model, out ModelCard card) => _byName.TryGetValue(model, out card!);
}
