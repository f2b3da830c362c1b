import Pipeline
import Media
