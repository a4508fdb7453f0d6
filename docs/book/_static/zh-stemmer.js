// Sphinx 9's Chinese search data ends with `window.Stemmer = ChineseStemmer` but ships only the
// English stemmer (Latin words in Chinese pages are stemmed as English): name it for that line.
window.ChineseStemmer = window.ChineseStemmer || function () { return new EnglishStemmer(); };
