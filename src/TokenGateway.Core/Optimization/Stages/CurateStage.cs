using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Stage 4 (lossy, opt-in): when the latest turn carries retrieved documents — Anthropic <c>document</c> /
/// <c>search_result</c> blocks, <c>&lt;document&gt;…&lt;/document&gt;</c> sections, or a JSON array of objects with a
/// text field — keeps the passages most relevant to the latest user question (BM25, with the earlier user turns at a
/// lower weight) within a token budget, in their original order. Sections are split into passages at blank lines,
/// headings and about <see cref="PassageTokens"/> tokens; a partly kept section keeps its tags and frame lines, with
/// <c>[…]</c> where passages were left out; the best passages bring their neighbours. Blocks and JSON elements are
/// kept or dropped whole. Earlier turns are never touched, so the cached prefix is unaffected.
/// </summary>
internal sealed partial class CurateStage : IOptimizationStage
{
    private static readonly string[] _textFields = ["text", "content", "page_content", "chunk", "body", "snippet", "passage"];
    private static readonly string[] _titleFields = ["title", "heading", "chunk_heading", "name", "source", "url"];

    public string Name => OptimizationStages.Curate;

    public bool IsEnabled(OptimizationPolicy policy) => policy.Enabled && policy.Curate.Enabled;

    /// <summary>Target size of a passage (estimated at 4 characters a token); passages end early at blank lines and headings.</summary>
    internal const int PassageTokens = 150;

    /// <summary>The best passages whose neighbours (previous and next passage of the same document) are kept too.</summary>
    internal const int NeighbourSeeds = 1;

    /// <summary>Weight of the earlier user turns in the ranking, relative to the latest question (both scaled to 0–1).</summary>
    internal const double RecentWeight = 0.3;

    /// <summary>Discount of each further passage of the same document when ranking (1 = none).</summary>
    internal const double Diversity = 0.8;

    /// <summary>The marker standing for passages left out of a partly kept document.</summary>
    internal const string Gap = "[…]";

    public int Apply(StageContext context)
    {
        var slots = RequestText.Slots(context.Request);
        var lastUser = slots.FindLastIndex(s => s.Kind == SlotKind.User);
        if (lastUser < 0)
        {
            return 0;
        }

        var turn = slots[lastUser].Message;
        var inScope = slots.Where(s => s.Message >= turn && s.Kind is SlotKind.User or SlotKind.ToolResult or SlotKind.Document).ToList();
        var documents = new List<Document>();
        var question = new StringBuilder();
        foreach (var slot in inScope)
        {
            if (slot.Kind == SlotKind.Document && slot.Block is not null)
            {
                var existing = documents.FirstOrDefault(d => d.Block == slot.Block);
                if (existing is null)
                {
                    documents.Add(new Document(slot.Block, null, TitleOf(slot.Block) + "\n" + slot.Text, context.Count(slot.Block.ToJsonString())));
                }

                continue;
            }

            var text = slot.Text;
            var sections = DocumentSection().Matches(text);
            if (sections.Count > 0)
            {
                foreach (Match m in sections)
                {
                    documents.Add(new Document(null, (slot, m.Index, m.Length), m.Value, context.Count(m.Value)));
                }

                if (slot.Kind == SlotKind.User)
                {
                    question.Append(DocumentSection().Replace(text, " ")).Append('\n');
                }

                continue;
            }

            if (TryJsonDocuments(slot, context, documents))
            {
                continue;
            }

            if (slot.Kind == SlotKind.User && slot.Message == slots[lastUser].Message)
            {
                question.Append(text).Append('\n');
            }
        }

        var options = context.Policy.Curate;
        var total = documents.Sum(d => d.Tokens);
        if (documents.Count < 2 || total <= options.MaxTokens || string.IsNullOrWhiteSpace(question.ToString()))
        {
            return 0;
        }

        var passages = Passages(context, documents);
        var keep = Select(question.ToString(), RecentTurns(slots, turn), documents, passages, options);
        if (keep.Count == passages.Count)
        {
            return 0;
        }

        var saved = Remove(context, documents, passages, keep);
        if (saved > 0)
        {
            context.Request.MarkModified();
        }

        return saved;
    }

    /// <summary>The text of the two user turns before the latest, outside any documents (the conversation's recent topic).</summary>
    private static string RecentTurns(List<TextSlot> slots, int latest)
    {
        var earlier = slots.Where(s => s.Kind == SlotKind.User && s.Message < latest && s.Message >= 0).Select(s => s.Message).Distinct().TakeLast(2).ToHashSet();
        return string.Join('\n', slots.Where(s => s.Kind == SlotKind.User && earlier.Contains(s.Message)).Select(s => DocumentSection().Replace(s.Text, " ")));
    }

    /// <summary>
    /// Ranks passages by BM25 against the question (plus a smaller weight for the earlier turns), then keeps the best that
    /// fit the budget, the neighbours of the best <see cref="NeighbourSeeds"/>, and always the best passage of the first
    /// <c>minDocuments</c> documents. Returns the indexes of the kept passages.
    /// </summary>
    internal static HashSet<int> Select(string question, string recent, IReadOnlyList<Document> documents, IReadOnlyList<Passage> passages, CurateOptions options)
    {
        var texts = passages.Select(p => p.ScoringText).ToList();
        var scores = Bm25.Blend(question, recent, texts, RecentWeight);

        var ranked = Enumerable.Range(0, passages.Count).OrderByDescending(i => scores[i]).ThenBy(i => i).ToList();
        var index = new Dictionary<(int Document, int Ordinal), int>();
        for (var i = 0; i < passages.Count; i++)
        {
            index[(passages[i].Document, passages[i].Ordinal)] = i;
        }

        var keep = new HashSet<int>();
        var opened = new HashSet<int>();
        var used = 0;
        bool Add(int i, bool force)
        {
            if (keep.Contains(i))
            {
                return true;
            }

            var passage = passages[i];
            var cost = passage.Tokens + (opened.Contains(passage.Document) ? 0 : documents[passage.Document].FrameTokens);
            if (!force && used + cost > options.MaxTokens)
            {
                return false;
            }

            keep.Add(i);
            opened.Add(passage.Document);
            used += cost;
            return true;
        }

        // Greedy in order of score, each further passage of a document discounted (Diversity^n), so a second relevant
        // document is preferred to a fifth passage of the first.
        var perDocument = new int[documents.Count];
        var remaining = new List<int>(ranked);
        for (var r = 0; remaining.Count > 0; r++)
        {
            var pick = 0;
            var pickScore = double.MinValue;
            for (var c = 0; c < remaining.Count; c++)
            {
                var candidate = remaining[c];
                var value = scores[candidate] * Math.Pow(Diversity, perDocument[passages[candidate].Document]);
                if (value > pickScore)
                {
                    (pick, pickScore) = (c, value);
                }
            }

            var i = remaining[pick];
            remaining.RemoveAt(pick);
            var force = !opened.Contains(passages[i].Document) && opened.Count < options.MinDocuments;
            if (pickScore <= 0 && !force)
            {
                break; // nothing left shares a term with the question
            }

            if (keep.Contains(i) || !Add(i, force))
            {
                continue;
            }

            perDocument[passages[i].Document]++;
            if (r < NeighbourSeeds)
            {
                foreach (var ordinal in new[] { passages[i].Ordinal - 1, passages[i].Ordinal + 1 })
                {
                    if (index.TryGetValue((passages[i].Document, ordinal), out var neighbour) && !keep.Contains(neighbour) && Add(neighbour, force: false))
                    {
                        perDocument[passages[i].Document]++;
                    }
                }
            }
        }

        return keep;
    }

    /// <summary>
    /// Splits each <c>&lt;document&gt;</c> section into passages at blank lines, headings and about
    /// <see cref="PassageTokens"/> tokens (over-long lines at sentence ends, then at spaces). Tag-only lines, short
    /// single-line elements such as <c>&lt;source&gt;…&lt;/source&gt;</c> and gap markers are the document's frame:
    /// kept with any of its passages and used as its title when ranking. Content blocks and JSON elements are one
    /// passage each.
    /// </summary>
    internal static List<Passage> Passages(StageContext context, List<Document> documents)
    {
        var passages = new List<Passage>();
        for (var d = 0; d < documents.Count; d++)
        {
            var document = documents[d];
            if (document.Section is null)
            {
                passages.Add(new Passage(d, 0, document.Text, document.Tokens, []));
                continue;
            }

            var text = document.Text;
            var open = text.IndexOf('>', StringComparison.Ordinal) + 1;
            var close = text.LastIndexOf("</", StringComparison.Ordinal);
            var segments = Segments(text[open..close]);
            var frame = new StringBuilder(text[..open]).Append(' ').Append(text[close..]);
            foreach (var segment in segments.Where(s => s.Frame))
            {
                frame.Append('\n').Append(segment.Text);
            }

            document.Segments = segments;
            document.FrameTokens = context.Count(frame.ToString()) + 2;

            // The first content line is usually the document's heading: every passage is ranked with it.
            var heading = segments.FirstOrDefault(s => !s.Frame && s.Text.Length > 0)?.Text;
            var title = heading is { Length: <= 200 } ? frame.Append('\n').Append(heading).ToString() : frame.ToString();

            var ordinal = 0;
            var members = new List<int>();
            var size = 0;
            void Flush()
            {
                if (members.Count == 0)
                {
                    return;
                }

                var body = string.Join('\n', members.Select(m => segments[m].Text));
                passages.Add(new Passage(d, ordinal++, title + "\n" + body, context.Count(body) + 3, members.ToArray()));
                members.Clear();
                size = 0;
            }

            for (var k = 0; k < segments.Count; k++)
            {
                var segment = segments[k];
                if (segment.Frame)
                {
                    Flush(); // tags and gap markers end a passage, so a curated section splits the same way again
                    continue;
                }

                if (segment.Text.Length == 0)
                {
                    if (size >= PassageTokens / 2)
                    {
                        Flush(); // a paragraph break after half a passage
                    }

                    continue;
                }

                var estimate = (segment.Text.Length / 4) + 1;
                if (members.Count > 0 && (size + estimate > PassageTokens || IsHeading(segment.Text)))
                {
                    Flush();
                }

                members.Add(k);
                size += estimate;
            }

            Flush();
        }

        return passages;
    }
    private static bool IsHeading(string line) => line.TrimStart().StartsWith('#');

    /// <summary>The lines of a section's inner text; over-long lines are cut into pieces of about a passage.</summary>
    private static List<Segment> Segments(string inner)
    {
        var segments = new List<Segment>();
        var lines = inner.Split('\n');
        for (var l = 0; l < lines.Length; l++)
        {
            var line = lines[l];
            var separator = l < lines.Length - 1 ? "\n" : string.Empty;
            if (FrameLine().IsMatch(line))
            {
                segments.Add(new Segment(line, separator, Frame: true));
                continue;
            }

            const int Piece = PassageTokens * 4;
            var start = 0;
            while (line.Length - start > Piece * 2)
            {
                var cut = line.LastIndexOf(". ", start + Piece, Piece / 2, StringComparison.Ordinal);
                cut = cut > start ? cut + 1 : line.LastIndexOf(' ', start + Piece, Piece / 2);
                cut = cut > start ? cut : start + Piece;
                segments.Add(new Segment(line[start..cut], " ", Frame: false));
                start = cut < line.Length && line[cut] == ' ' ? cut + 1 : cut;
            }

            segments.Add(new Segment(line[start..], separator, Frame: false));
        }

        // Tag lines are frame only around the content (<source>, <document_content>); inside it they are content (code).
        var first = segments.FindIndex(s => !s.Frame && s.Text.Trim().Length > 0);
        var last = segments.FindLastIndex(s => !s.Frame && s.Text.Trim().Length > 0);
        for (var k = first + 1; first >= 0 && k < last; k++)
        {
            if (segments[k].Frame && segments[k].Text.Trim() != Gap)
            {
                segments[k] = segments[k] with { Frame = false };
            }
        }

        return segments;
    }

    private static int Remove(StageContext context, List<Document> documents, List<Passage> passages, HashSet<int> keep)
    {
        var saved = 0;
        var keptSegments = documents.Select(_ => new HashSet<int>()).ToList();
        var keptPassages = new int[documents.Count];
        var allPassages = new int[documents.Count];
        for (var i = 0; i < passages.Count; i++)
        {
            allPassages[passages[i].Document]++;
            if (keep.Contains(i))
            {
                keptPassages[passages[i].Document]++;
                keptSegments[passages[i].Document].UnionWith(passages[i].Segments);
            }
        }

        bool Dropped(int d) => keptPassages[d] == 0;
        bool Whole(int d) => keptPassages[d] == allPassages[d];

        // Content blocks: remove from their array.
        for (var d = 0; d < documents.Count; d++)
        {
            if (documents[d].Block is { } block && Dropped(d) && block.Parent is JsonArray parent && parent.Count > 1)
            {
                parent.Remove(block);
                saved += documents[d].Tokens;
            }
        }

        // Text sections: rebuild each slot once, back to front: drop a section, or keep only its selected passages.
        foreach (var group in Enumerable.Range(0, documents.Count).Where(d => documents[d].Section is not null).GroupBy(d => documents[d].Section!.Value.Slot))
        {
            var slot = group.Key;
            var original = slot.Text;
            var text = original;
            var changed = false;
            foreach (var d in group.Where(d => !Whole(d)).OrderByDescending(d => documents[d].Section!.Value.Index))
            {
                var (_, index, length) = documents[d].Section!.Value;
                text = text.Remove(index, length);
                if (!Dropped(d))
                {
                    text = text.Insert(index, Rebuild(documents[d], keptSegments[d]));
                }

                changed = true;
            }

            if (!changed)
            {
                continue;
            }

            text = TextCompactor.NormalizeWhitespace(text);
            var delta = context.Count(original) - context.Count(text);
            if (delta > 0)
            {
                slot.Text = text;
                saved += delta;
            }
        }

        // JSON arrays: keep the selected elements, minified.
        foreach (var group in Enumerable.Range(0, documents.Count).Where(d => documents[d].Element is not null).GroupBy(d => documents[d].Element!.Value.Slot))
        {
            var slot = group.Key;
            var original = slot.Text;
            var array = new JsonArray();
            foreach (var d in group.OrderBy(d => documents[d].Element!.Value.Index))
            {
                if (!Dropped(d))
                {
                    array.Add(JsonNode.Parse(documents[d].Text));
                }
            }

            var text = array.ToJsonString(Dialects.LlmRequestParser.WriteOptions);
            var delta = context.Count(original) - context.Count(text);
            if (delta > 0)
            {
                slot.Text = text;
                saved += delta;
            }
        }

        return saved;
    }

    /// <summary>A partly kept section: its tags and frame lines, the kept segments, and one gap marker per left-out run.</summary>
    private static string Rebuild(Document document, HashSet<int> kept)
    {
        var text = document.Text;
        var open = text.IndexOf('>', StringComparison.Ordinal) + 1;
        var close = text.LastIndexOf("</", StringComparison.Ordinal);
        var sb = new StringBuilder(text, 0, open, close - open);
        var segments = document.Segments!;
        var gap = false;
        for (var k = 0; k < segments.Count; k++)
        {
            var segment = segments[k];
            if (segment.Frame || kept.Contains(k) || (segment.Text.Length == 0 && !gap))
            {
                sb.Append(segment.Text).Append(segment.Separator);
                gap = false;
            }
            else if (segment.Text.Length > 0 && !gap)
            {
                sb.Append(Gap).Append('\n');
                gap = true;
            }
        }

        if (sb[^1] != '\n')
        {
            sb.Append('\n');
        }

        return sb.Append(text, close, text.Length - close).ToString();
    }

    private static bool TryJsonDocuments(TextSlot slot, StageContext context, List<Document> documents)
    {
        var text = slot.Text.Trim();
        if (text.Length < 2 || text[0] != '[' || text[^1] != ']')
        {
            return false;
        }

        JsonArray? array;
        try
        {
            array = JsonNode.Parse(text) as JsonArray;
        }
        catch (JsonException)
        {
            return false;
        }

        if (array is null || array.Count < 2 || !array.All(e => e is JsonObject o && _textFields.Any(f => o[f] is JsonValue v && v.GetValueKind() == JsonValueKind.String)))
        {
            return false;
        }

        for (var i = 0; i < array.Count; i++)
        {
            var json = array[i]!.ToJsonString(Dialects.LlmRequestParser.WriteOptions);
            documents.Add(new Document(null, null, json, context.Count(json)) { Element = (slot, i) });
        }

        return true;
    }

    private static string TitleOf(JsonObject block) =>
        string.Join(' ', _titleFields.Select(f => block[f]).OfType<JsonValue>().Where(v => v.GetValueKind() == JsonValueKind.String).Select(v => v.GetValue<string>()));

    [GeneratedRegex(@"<document\b[^>]*>.*?</document>\s*", RegexOptions.Singleline | RegexOptions.IgnoreCase)]
    private static partial Regex DocumentSection();

    /// <summary>Tag-only lines, short one-line elements (<c>&lt;source&gt;…&lt;/source&gt;</c>) and gap markers.</summary>
    [GeneratedRegex(@"^\s*(</?[A-Za-z][\w:.-]*(\s[^<>]*)?/?>|<([A-Za-z][\w:.-]*)(\s[^<>]*)?>[^<>\n]{0,300}</\3>|\[…\])\s*$")]
    private static partial Regex FrameLine();

    /// <summary>One retrieved document: a content block, a text section, or a JSON array element.</summary>
    internal sealed record Document(JsonObject? Block, (TextSlot Slot, int Index, int Length)? Section, string Text, int Tokens)
    {
        public (TextSlot Slot, int Index)? Element { get; init; }

        /// <summary>A section's lines (set when it is split into passages).</summary>
        public List<Segment>? Segments { get; set; }

        /// <summary>Tokens a section costs besides its passages: tags, frame lines, separators.</summary>
        public int FrameTokens { get; set; }
    }

    /// <summary>A line (or a piece of an over-long line) of a section and what follows it.</summary>
    internal sealed record Segment(string Text, string Separator, bool Frame);

    /// <summary>A rankable unit: some consecutive segments of a section, or a whole block / JSON element.</summary>
    /// <param name="Document">Index of its document.</param>
    /// <param name="Ordinal">Position among its document's passages.</param>
    /// <param name="ScoringText">The text BM25 sees: the document's title and frame, then the passage.</param>
    /// <param name="Tokens">What keeping it costs.</param>
    /// <param name="Segments">The section segments it covers (empty for blocks and JSON elements).</param>
    internal sealed record Passage(int Document, int Ordinal, string ScoringText, int Tokens, int[] Segments);
}
